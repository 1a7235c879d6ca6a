// Fixed-shape decoding (model/fixed_decode.h) against the Hugging Face greedy references of the
// fixtures and against the eager decode loop: the same tokens, with padding, with an
// end-of-sequence id, and a cache that the eager forward continues from; the dense MoE against
// the routed one; and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/fixed_decode.h"
#include "model/generation.h"
#include "model_test_util.h"

namespace semskip::test {
namespace {

std::vector<int64_t> fixture_prompt(const std::string& name, int i) {
  const SafetensorsFile ref(fixture_dir(name) + "/reference.safetensors");
  return to_vector(ref.tensor(fmt::format("ids_{}", i)));
}

std::vector<int64_t> fixture_greedy(const std::string& name, int i) {
  const SafetensorsFile ref(fixture_dir(name) + "/reference.safetensors");
  return to_vector(ref.tensor(fmt::format("greedy_{}", i)));
}

class FixedDecode : public ::testing::TestWithParam<std::string> {};

// Both reference prompts in one left-padded batch, fixed mode: each row's tokens are the ones
// transformers' greedy decoding produced for that prompt alone, and the eager loop's.
TEST_P(FixedDecode, BatchedTokensEqualReferenceAndEager) {
  for (AttnImpl impl : {AttnImpl::eager, AttnImpl::sdpa}) {
    const Transformer model = load_fixture(GetParam(), impl);
    const std::vector<std::vector<int64_t>> prompts = {fixture_prompt(GetParam(), 0), fixture_prompt(GetParam(), 1)};
    const std::vector<int64_t> expected0 = fixture_greedy(GetParam(), 0), expected1 = fixture_greedy(GetParam(), 1);
    ASSERT_EQ(expected0.size(), expected1.size());
    GenerateOptions go;
    go.max_new_tokens = static_cast<int64_t>(expected0.size());
    go.decode = DecodeMode::fixed;
    const GenerateResult fixed = generate_greedy(model, prompts, go);
    EXPECT_EQ(fixed.decode, DecodeMode::fixed);
    EXPECT_EQ(fixed.tokens[0], expected0) << attn_impl_name(impl);
    EXPECT_EQ(fixed.tokens[1], expected1) << attn_impl_name(impl);
    EXPECT_EQ(fixed.n_decode_steps, go.max_new_tokens - 1);
    go.decode = DecodeMode::eager;
    const GenerateResult eager = generate_greedy(model, prompts, go);
    EXPECT_EQ(fixed.tokens, eager.tokens) << attn_impl_name(impl);
    EXPECT_EQ(fixed.n_tokens_gen, eager.n_tokens_gen);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixedDecode, ::testing::ValuesIn(fixture_names()));

// An eos id that the second prompt produces third: its row stops there in both modes; the other
// row runs on, so the loop runs every step.
TEST(FixedDecodeEos, RowsStopAtEosAsInTheEagerLoop) {
  const Transformer model = load_fixture("llama-gqa");
  const std::vector<std::vector<int64_t>> prompts = {fixture_prompt("llama-gqa", 0), fixture_prompt("llama-gqa", 1)};
  const std::vector<int64_t> greedy1 = fixture_greedy("llama-gqa", 1);
  GenerateOptions go;
  go.max_new_tokens = 12;
  go.eos_token_id = greedy1[2];
  go.decode = DecodeMode::eager;
  const GenerateResult eager = generate_greedy(model, prompts, go);
  go.decode = DecodeMode::fixed;
  const GenerateResult fixed = generate_greedy(model, prompts, go);
  EXPECT_EQ(fixed.tokens, eager.tokens);
  ASSERT_LE(fixed.tokens[1].size(), 3u);
  EXPECT_EQ(fixed.tokens[1].back(), greedy1[2]);
  EXPECT_EQ(fixed.n_tokens_gen, eager.n_tokens_gen);
}

// Every row ends early: the fixed loop stops at its next check, at most kFixedDecodeEosCheck
// steps after the eager loop, whose tokens it keeps.
TEST(FixedDecodeEos, StopsOnceEveryRowHasEnded) {
  const Transformer model = load_fixture("qwen2-tied");
  const std::vector<int64_t> prompt = fixture_prompt("qwen2-tied", 1);
  const std::vector<int64_t> greedy = fixture_greedy("qwen2-tied", 1);
  GenerateOptions go;
  go.max_new_tokens = 40;
  go.eos_token_id = greedy[1];
  go.decode = DecodeMode::eager;
  const GenerateResult eager = generate_greedy(model, {prompt}, go);
  go.decode = DecodeMode::fixed;
  const GenerateResult fixed = generate_greedy(model, {prompt}, go);
  EXPECT_EQ(fixed.tokens, eager.tokens);
  const size_t first_eos = static_cast<size_t>(std::find(greedy.begin(), greedy.end(), greedy[1]) - greedy.begin());
  EXPECT_EQ(fixed.tokens[0].size(), first_eos + 1);
  EXPECT_GE(fixed.n_decode_steps, eager.n_decode_steps);
  EXPECT_LE(fixed.n_decode_steps, eager.n_decode_steps + kFixedDecodeEosCheck);
  EXPECT_LT(fixed.n_decode_steps, go.max_new_tokens - 1);
}

// After fixed steps the cache holds what the eager forward would have written: one more
// eager step from it gives the logits of a full forward over prompt and generated tokens.
TEST(FixedDecodeCache, EagerForwardContinuesFromIt) {
  const Transformer model = load_fixture("qwen2moe");
  const std::vector<int64_t> prompt = fixture_prompt("qwen2moe", 0);
  const int64_t n = static_cast<int64_t>(prompt.size());
  KvCache cache = model.make_kv_cache(1, 4);  // small: decode_fixed grows it first
  ForwardOptions fo;
  fo.kv_cache = &cache;
  fo.last_token_logits = true;
  const at::Tensor first = model.forward(at::tensor(prompt, at::kLong).unsqueeze(0), fo).select(1, 0).argmax(-1);
  const FixedDecodeResult r = decode_fixed(model, cache, first, 6, /*graph=*/false, std::nullopt);
  ASSERT_EQ(r.n_steps, 6);
  ASSERT_EQ(r.tokens.sizes(), (std::vector<int64_t>{1, 7}));
  EXPECT_EQ(cache.length(0), n + 6);
  EXPECT_EQ(cache.length(model.n_layers() - 1), n + 6);
  std::vector<int64_t> all = prompt;
  for (int64_t t = 0; t < 7; ++t) all.push_back(r.tokens[0][t].item<int64_t>());
  const at::Tensor step = model.forward(at::tensor({all.back()}, at::kLong).view({1, 1}), fo);  // [1, 1, V]
  const at::Tensor full = model.forward(at::tensor(all, at::kLong).unsqueeze(0)).narrow(1, n + 6, 1);
  EXPECT_LT(rel_err(step, full), 1e-5);
}

// The fixed-shape MoE equals the routed experts both ways: gathered experts (one row of
// qwen2moe: 3·1·2 < 8 experts) and every expert on every row (7 rows; Mixtral's 4 experts).
TEST(MoeFixed, EqualsRoutedExperts) {
  for (const char* name : {"qwen2moe", "mixtral"}) {
    const Transformer model = load_fixture(name);
    for (const DecoderLayer& l : model.layers()) {
      if (!l.is_moe()) continue;
      const MoeBlock& moe = *l.moe;
      ASSERT_TRUE(moe.stacked()) << name;
      // The experts' weights are rows of the stack: nothing duplicated.
      EXPECT_EQ(moe.experts[1].down_proj.weight.data_ptr(), moe.stacked_down[1].data_ptr());
      EXPECT_EQ(moe.experts[1].up_proj.weight.data_ptr(), moe.stacked_gate_up[1][moe.experts[1].intermediate_size()].data_ptr());
      for (int64_t n : {1, 7}) {
        at::manual_seed(3);
        const at::Tensor x = at::randn({n, model.config().hidden_size});
        const Routing routing = moe.route(x);
        EXPECT_LT(rel_err(moe.forward_fixed(x, routing), moe.forward_routed(x, routing)), 1e-5) << name << " n=" << n;
      }
    }
  }
}

// On a GPU with LibTorch's grouped matmul (bf16, sm90 / sm100): the grouped experts and the
// fixed-shape MoE (which then takes them) equal the per-expert path, at 1, 7 and 300 rows.
// Skipped where the grouped path is not available (CPU builds, other GPUs).
TEST(MoeGrouped, EqualsPerExpertPath) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build/machine";
  ModelOptions o;
  o.dtype = DType::bf16;
  o.device = at::Device(at::kCUDA, 0);
  const Transformer model = Transformer::load(fixture_dir("qwen2moe"), o);
  for (const DecoderLayer& l : model.layers()) {
    if (!l.is_moe()) continue;
    const MoeBlock& moe = *l.moe;
    const at::Tensor probe = at::zeros({1, model.config().hidden_size}, model.embed_tokens().options());
    if (!moe.grouped_available(probe)) GTEST_SKIP() << "no grouped matmul on this GPU or LibTorch";
    for (int64_t n : {1, 7, 300}) {
      at::manual_seed(5);
      const at::Tensor x = at::randn({n, model.config().hidden_size}, probe.options());
      const Routing routing = moe.route(x);
      const ExpertDispatch plan = moe.dispatch(routing);
      const at::Tensor per_expert =
          moe.combine(moe.experts_forward(moe.gather_rows(x, plan), plan.counts), plan) + moe.shared_expert(x);
      FlopCounter flops;
      EXPECT_LT(rel_err(moe.forward_grouped(x, routing, &flops, 0), per_expert), 2e-2) << "n=" << n;
      EXPECT_LT(rel_err(moe.forward_fixed(x, routing), per_expert), 2e-2) << "n=" << n;
      // The routed pairs' FLOPs, as experts_forward charges them.
      FlopCounter expected;
      moe.experts_forward(moe.gather_rows(x, plan), plan.counts, &expected, 0);
      EXPECT_EQ(flops.by_group(OpGroup::experts), expected.by_group(OpGroup::experts)) << "n=" << n;
    }
  }
}

TEST(FixedDecodeErrors, RefusedWithTheReason) {
  const Transformer model = load_fixture("llama-gqa");
  GenerateOptions go;
  go.max_new_tokens = 4;
  go.decode = DecodeMode::graph;
  try {
    generate_greedy(model, {{1, 2, 3}}, go);
    FAIL() << "graph on CPU was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a CUDA device"), std::string::npos) << e.what();
  }
  FlopCounter flops;
  go.decode = DecodeMode::fixed;
  go.flops = &flops;
  try {
    generate_greedy(model, {{1, 2, 3}}, go);
    FAIL() << "fixed with a FLOP counter was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("FLOP counting"), std::string::npos) << e.what();
  }
  // auto falls back to eager where fixed shapes cannot run, and on CPU.
  go.decode = DecodeMode::auto_;
  EXPECT_EQ(generate_greedy(model, {{1, 2, 3}}, go).decode, DecodeMode::eager);
  go.flops = nullptr;
  EXPECT_EQ(generate_greedy(model, {{1, 2, 3}}, go).decode, DecodeMode::eager);
  try {
    parse_decode_mode("graphs", "option --decode-mode");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("option --decode-mode: unknown decode mode 'graphs'"), std::string::npos);
  }
  EXPECT_EQ(parse_decode_mode("auto", "x"), DecodeMode::auto_);
}

}  // namespace
}  // namespace semskip::test
