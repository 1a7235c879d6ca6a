// Reading only some rows of a tensor (SafetensorsFile::tensor_rows, Checkpoint::get_rows) and
// loading only some routed experts (ModelOptions::experts), as expert-parallel ranks do:
// slices are compared with slicing the whole tensor, and a checkpoint rewritten with stacked
// expert tensors (transformers 5's gate_up_proj / down_proj) against the per-expert original.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include <fmt/format.h>

#include "model/safetensors.h"
#include "model/transformer.h"
#include "test_util.h"

namespace semskip::test {
namespace {

namespace fs = std::filesystem;

const std::string kQwen2Moe = std::string(SEMSKIP_TEST_DATA) + "/parity/qwen2moe";

TEST(TensorRows, ASliceIsTheWholeTensorSliced) {
  TempDir dir;
  const at::Tensor f32 = at::arange(5 * 3 * 4, at::kFloat).view({5, 3, 4});
  const at::Tensor bf16 = (at::arange(7 * 6, at::kFloat) / 8).to(at::kBFloat16).view({7, 6});
  const at::Tensor i64 = at::arange(9, at::kLong) * 1000003;
  write_safetensors(dir.file("t.safetensors"), {{"stack", f32}, {"half", bf16}, {"ids", i64}});
  const SafetensorsFile file(dir.file("t.safetensors"));
  for (int64_t first = 0; first <= 5; ++first) {
    for (int64_t count = 0; first + count <= 5; ++count) {
      const at::Tensor got = file.tensor_rows("stack", first, count);
      EXPECT_EQ(got.sizes().vec(), (std::vector<int64_t>{count, 3, 4}));
      EXPECT_TRUE(at::equal(got, f32.narrow(0, first, count))) << first << " " << count;
    }
  }
  EXPECT_TRUE(at::equal(file.tensor_rows("half", 2, 4), bf16.narrow(0, 2, 4)));
  EXPECT_TRUE(at::equal(file.tensor_rows("ids", 8, 1), i64.narrow(0, 8, 1)));
  // The slice lies over exactly its bytes of the mapping: its rows start first · row bytes in.
  const TensorView& v = file.view("stack");
  EXPECT_EQ(static_cast<const uint8_t*>(file.tensor_rows("stack", 2, 1).data_ptr()), v.data + 2 * 3 * 4 * 4);
}

TEST(TensorRows, RangesOutsideTheTensorAreRefusedByName) {
  TempDir dir;
  write_safetensors(dir.file("t.safetensors"), {{"stack", at::zeros({4, 2})}, {"scalar", at::ones({})}});
  const SafetensorsFile file(dir.file("t.safetensors"));
  expect_error([&] { file.tensor_rows("stack", 3, 2); },
               {dir.file("t.safetensors"), "tensor 'stack': rows [3, 5) are outside its 4 rows"});
  expect_error([&] { file.tensor_rows("stack", -1, 1); }, {"rows [-1, 0) are outside its 4 rows"});
  expect_error([&] { file.tensor_rows("scalar", 0, 1); }, {"tensor 'scalar' is a scalar"});
  expect_error([&] { file.tensor_rows("nope", 0, 1); }, {"no tensor named 'nope'"});
}

TEST(TensorRows, CheckpointGetRowsConvertsAndChecksTheWholeShape) {
  TempDir dir;
  const at::Tensor w = at::randn({6, 5}).to(at::kBFloat16);
  write_safetensors(dir.file("model.safetensors"), {{"w", w}});
  const Checkpoint ckpt(dir.path());
  const at::Tensor got = ckpt.get_rows("w", 1, 4, at::kFloat, at::kCPU, {6, 5});
  EXPECT_EQ(got.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(got, ckpt.get("w", at::kFloat, at::kCPU).narrow(0, 1, 4)));
  expect_error([&] { ckpt.get_rows("w", 0, 1, at::kFloat, at::kCPU, {6, 4}); },
               {"tensor 'w' has shape [6, 5], expected [6, 4]"});
  expect_error([&] { ckpt.get_rows("w", 0, 1, at::kLong, at::kCPU); }, {"cannot be read as Long"});
}

// The qwen2moe fixture with its routed experts stacked per layer, as transformers 5 lays
// them out: gate_up_proj [E, 2·I, d] (gate rows first), down_proj [E, d, I].
std::string stacked_copy(const TempDir& dir) {
  const std::string out = dir.subdir("stacked");
  fs::copy_file(kQwen2Moe + "/config.json", out + "/config.json");
  const SafetensorsFile src(kQwen2Moe + "/model.safetensors");
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::vector<at::Tensor>> gate_up, down;
  for (const std::string& name : src.names()) {
    const size_t at = name.find(".mlp.experts.");
    if (at == std::string::npos) {
      tensors[name] = src.tensor(name).clone();
      continue;
    }
    const std::string prefix = name.substr(0, at) + ".mlp.experts";
    const std::string rest = name.substr(at + 13);  // "<e>.<part>.weight"
    const int64_t e = std::stoll(rest.substr(0, rest.find('.')));
    if (rest.find("gate_proj") == std::string::npos) continue;  // each expert once, from its gate
    const std::string ep = fmt::format("{}.{}.", prefix, e);
    gate_up[prefix].push_back(
        at::cat({src.tensor(ep + "gate_proj.weight"), src.tensor(ep + "up_proj.weight")}, 0));
    down[prefix].push_back(src.tensor(ep + "down_proj.weight"));
  }
  for (auto& [prefix, list] : gate_up) tensors[prefix + ".gate_up_proj"] = at::stack(list).contiguous();
  for (auto& [prefix, list] : down) tensors[prefix + ".down_proj"] = at::stack(list).contiguous();
  write_safetensors(out + "/model.safetensors", tensors);
  return out;
}

Transformer load(const std::string& dir, const ExpertShard& shard) {
  ModelOptions o;
  o.attn_impl = AttnImpl::eager;
  o.experts = shard;
  return Transformer::load(dir, o);
}

TEST(ExpertShards, OnlyTheHeldExpertsAreLoadedPerExpertOrStacked) {
  TempDir dir;
  const std::string stacked = stacked_copy(dir);
  const Transformer full = load(kQwen2Moe, ExpertShard{});
  const ExpertShard shard{2, 3};  // experts [2, 5) of 8
  testing::internal::CaptureStderr();
  const Transformer per_expert = load(kQwen2Moe, shard);
  const Transformer from_stack = load(stacked, shard);
  // Experts left to other ranks are not "unused tensors" of the checkpoint.
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  for (int64_t l = 0; l < full.n_layers(); ++l) {
    const MoeBlock& ref = *full.layer(l).moe;
    for (const Transformer* t : {&per_expert, &from_stack}) {
      const MoeBlock& m = *t->layer(l).moe;
      ASSERT_EQ(m.n_experts(), 8);
      EXPECT_EQ(m.n_held(), 3);
      for (int64_t e = 0; e < 8; ++e) {
        ASSERT_EQ(m.holds(e), e >= 2 && e < 5) << l << " " << e;
        if (!m.holds(e)) continue;
        const SwiGluMlp& a = m.experts[static_cast<size_t>(e)];
        const SwiGluMlp& b = ref.experts[static_cast<size_t>(e)];
        EXPECT_TRUE(at::equal(a.gate_proj.weight, b.gate_proj.weight));
        EXPECT_TRUE(at::equal(a.up_proj.weight, b.up_proj.weight));
        EXPECT_TRUE(at::equal(a.down_proj.weight, b.down_proj.weight));
      }
      // The router and the shared expert are everyone's.
      EXPECT_TRUE(at::equal(m.router.weight, ref.router.weight));
      EXPECT_TRUE(at::equal(m.shared->down_proj.weight, ref.shared->down_proj.weight));
    }
  }
  // Held parameters: 5 of 8 experts' fewer, 3 layers of 3 · 64 · 32 each.
  EXPECT_EQ(full.n_params() - per_expert.n_params(), 3 * 5 * 3 * 64 * 32);
  EXPECT_EQ(from_stack.n_params(), per_expert.n_params());
  // An expert this process does not hold cannot run, and says why.
  expect_error([&] { per_expert.layer(0).moe->expert_forward(0, at::zeros({1, 64})); },
               {"expert 0 is not held by this process"});
}

TEST(ExpertShards, TheStackedCheckpointGivesTheSameLogits) {
  TempDir dir;
  const std::string stacked = stacked_copy(dir);
  const at::Tensor ids = at::tensor({3, 17, 101, 7, 250, 11}, at::kLong).view({1, 6});
  const at::Tensor a = load(kQwen2Moe, ExpertShard{}).forward(ids, ForwardOptions{});
  const at::Tensor b = load(stacked, ExpertShard{}).forward(ids, ForwardOptions{});
  EXPECT_TRUE(at::allclose(a, b, 1e-6, 1e-6));
}

TEST(ExpertShards, ExpertsPastTheLayerAreRefused) {
  expect_error([&] { load(kQwen2Moe, ExpertShard{6, 3}); },
               {"model.layers.0.mlp.experts: the experts held, [6, 9), are not among the layer's 8 experts"});
}

}  // namespace
}  // namespace semskip::test
