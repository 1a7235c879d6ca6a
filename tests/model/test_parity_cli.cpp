// `semskip parity` end to end: it passes on a fixture, and fails — non-zero exit, the failing
// check named in its JSON — on references tampered in each of the ways it checks.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#include "model_test_util.h"

namespace semskip::test {
namespace {

namespace fs = std::filesystem;

struct CliResult {
  int exit_code = -1;
  nlohmann::json out;
};

// `semskip parity` on a model and a reference: its exit status and its stdout, or its stderr
// (`stderr_only`).
std::pair<int, std::string> capture_parity(const std::string& model_dir, const std::string& reference,
                                           bool stderr_only) {
  const std::string cmd = fmt::format("OMP_NUM_THREADS=1 '{}/bin/semskip' parity --model '{}' --reference '{}' {}",
                                      SEMSKIP_BINARY_DIR, model_dir, reference,
                                      stderr_only ? "2>&1 >/dev/null" : "2>/dev/null");
  FILE* p = ::popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

CliResult run_parity(const std::string& model_dir, const std::string& reference) {
  const auto [code, text] = capture_parity(model_dir, reference, false);
  CliResult r;
  r.exit_code = code;
  r.out = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return r;
}

class TempFolder {
 public:
  TempFolder() {
    std::string tmpl = (fs::temp_directory_path() / "semskip_parity_cli_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The fixture's reference tensors, for editing.
std::map<std::string, at::Tensor> reference_tensors(const std::string& name) {
  const SafetensorsFile f(fixture_dir(name) + "/reference.safetensors");
  std::map<std::string, at::Tensor> out;
  for (const std::string& n : f.names()) out[n] = f.tensor(n).clone();
  return out;
}

TEST(ParityCli, PassesOnEveryFixture) {
  for (const std::string& name : fixture_names()) {
    const CliResult r = run_parity(fixture_dir(name), fixture_dir(name) + "/reference.safetensors");
    EXPECT_EQ(r.exit_code, 0) << name;
    ASSERT_TRUE(r.out.is_object()) << name;
    EXPECT_TRUE(r.out["pass"].get<bool>());
    ASSERT_EQ(r.out["sequences"].size(), 2u);
    const nlohmann::json& s = r.out["sequences"][1];
    EXPECT_LT(s["logits"]["rel_err"].get<double>(), 1e-4);
    EXPECT_TRUE(s["flops"]["pass"].get<bool>());
    const bool moe = name == "qwen2moe" || name == "mixtral" || name == "qwen2moe-mixed" || name == "olmoe";
    EXPECT_EQ(s.contains("topk_experts"), moe);
    if (name == "qwen2moe-mixed") {
      // Dense layers 0 and 2 (mlp_only_layers, decoder_sparse_step 2): routing of layers 1, 3.
      EXPECT_EQ(s["topk_experts"]["layers"], nlohmann::json({1, 3}));
      EXPECT_TRUE(s["router_logits"]["pass"].get<bool>());
    }
  }
}

TEST(ParityCli, FailsOnTamperedLogitsGreedyAndExperts) {
  TempFolder tmp;
  auto t = reference_tensors("mixtral");
  t["logits_0"] = t["logits_0"] * 1.01;              // 1% relative error
  t["greedy_1"][3] = (t["greedy_1"][3].item<int64_t>() + 1) % 512;
  at::Tensor topk = t["topk_experts_1"];             // int64 [L, T, 2]
  topk[0][4] = topk[0][4].flip(0);                   // same set, other order: still a match
  for (int64_t e = 0; e < 4; ++e) {                  // a set that differs at one token
    if (e != topk[1][7][0].item<int64_t>() && e != topk[1][7][1].item<int64_t>()) {
      topk[1][7][1] = e;
      break;
    }
  }
  const std::string ref = tmp.path() + "/reference.safetensors";
  write_safetensors(ref, t);
  const CliResult r = run_parity(fixture_dir("mixtral"), ref);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_TRUE(r.out.is_object());
  EXPECT_FALSE(r.out["pass"].get<bool>());
  EXPECT_TRUE(r.out["flop_reference"].is_null());  // no reference.json beside the tampered file
  const nlohmann::json& s0 = r.out["sequences"][0];
  const nlohmann::json& s1 = r.out["sequences"][1];
  EXPECT_FALSE(s0["logits"]["pass"].get<bool>());
  EXPECT_NEAR(s0["logits"]["rel_err"].get<double>(), 0.01 / 1.01, 1e-4);
  EXPECT_TRUE(s0["greedy"]["pass"].get<bool>());
  EXPECT_TRUE(s0["topk_experts"]["pass"].get<bool>());
  EXPECT_FALSE(s1["greedy"]["pass"].get<bool>());
  EXPECT_EQ(s1["greedy"]["matching_prefix"].get<int64_t>(), 3);
  EXPECT_FALSE(s1["topk_experts"]["pass"].get<bool>());
  EXPECT_EQ(s1["topk_experts"]["mismatching_tokens"].get<int64_t>(), 1);
  EXPECT_TRUE(s1["logits"]["pass"].get<bool>());
  EXPECT_TRUE(s1["resid_post"]["pass"].get<bool>());
}

TEST(ParityCli, FailsOnTamperedResidualsAndFlops) {
  TempFolder tmp;
  auto t = reference_tensors("llama-gqa");
  t["resid_post_1"][2] = t["resid_post_1"][2] + 1e-2 * t["resid_post_1"][2].norm() / 40.0;
  const std::string ref = tmp.path() + "/reference.safetensors";
  write_safetensors(ref, t);
  nlohmann::json meta = fixture_json("llama-gqa");
  meta["sequences"][0]["flop_counter_total"] = meta["sequences"][0]["flop_counter_total"].get<int64_t>() + 2;
  std::ofstream(tmp.path() + "/reference.json") << meta.dump();
  const CliResult r = run_parity(fixture_dir("llama-gqa"), ref);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_TRUE(r.out.is_object());
  EXPECT_FALSE(r.out["sequences"][0]["flops"]["pass"].get<bool>());
  EXPECT_EQ(r.out["sequences"][0]["flops"]["compared"].get<int64_t>() + 2,
            r.out["sequences"][0]["flops"]["reference"].get<int64_t>());
  EXPECT_TRUE(r.out["sequences"][1]["flops"]["pass"].get<bool>());
  EXPECT_FALSE(r.out["sequences"][1]["resid_post"]["pass"].get<bool>());
  const nlohmann::json& per_layer = r.out["sequences"][1]["resid_post"]["rel_err_per_layer"];
  EXPECT_LT(per_layer[1].get<double>(), 1e-4);
  EXPECT_GT(per_layer[2].get<double>(), 1e-4);
}

// stderr of a parity run that must fail.
std::string parity_error(const std::string& model_dir, const std::string& reference) {
  const auto [code, text] = capture_parity(model_dir, reference, true);
  EXPECT_NE(code, 0) << text;
  return text;
}

// qwen2moe-mixed has dense layers 0 and 2: routing is given and checked for layers 1 and 3.
TEST(ParityCli, MixedDenseAndMoeRoutingIsCheckedPerMoeLayer) {
  TempFolder tmp;
  auto t = reference_tensors("qwen2moe-mixed");
  at::Tensor topk = t["topk_experts_1"];  // int64 [2, T, 2]: layers 1 and 3
  ASSERT_EQ(topk.size(0), 2);
  for (int64_t e = 0; e < 8; ++e) {      // layer 3, token 5: a set that differs
    if (e != topk[1][5][0].item<int64_t>() && e != topk[1][5][1].item<int64_t>()) {
      topk[1][5][1] = e;
      break;
    }
  }
  const std::string ref = tmp.path() + "/reference.safetensors";
  write_safetensors(ref, t);
  const CliResult r = run_parity(fixture_dir("qwen2moe-mixed"), ref);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_TRUE(r.out.is_object());
  EXPECT_TRUE(r.out["sequences"][0]["topk_experts"]["pass"].get<bool>());
  EXPECT_EQ(r.out["sequences"][1]["topk_experts"]["mismatching_tokens"].get<int64_t>(), 1);
  EXPECT_EQ(r.out["sequences"][1]["topk_experts"]["layers"], nlohmann::json({1, 3}));

  // Routing for every layer, dense ones included, is not this model's layout.
  auto all = reference_tensors("qwen2moe-mixed");
  const at::Tensor r0 = all["router_logits_0"];
  all["router_logits_0"] = at::cat({at::zeros_like(r0[0]).unsqueeze(0), r0[0].unsqueeze(0),
                                    at::zeros_like(r0[0]).unsqueeze(0), r0[1].unsqueeze(0)});
  const std::string ref_all = tmp.path() + "/all_layers.safetensors";
  write_safetensors(ref_all, all);
  EXPECT_NE(parity_error(fixture_dir("qwen2moe-mixed"), ref_all).find("router_logits_0 must be [2, T, ...]: one entry per MoE layer (1, 3)"),
            std::string::npos);

  // reference.json naming other MoE layers than the model's.
  fs::create_directories(tmp.path() + "/named");
  write_safetensors(tmp.path() + "/named/reference.safetensors", reference_tensors("qwen2moe-mixed"));
  nlohmann::json meta = fixture_json("qwen2moe-mixed");
  EXPECT_EQ(meta["moe_layers"], nlohmann::json({1, 3}));
  meta["moe_layers"] = {1, 2};
  std::ofstream(tmp.path() + "/named/reference.json") << meta.dump();
  EXPECT_NE(parity_error(fixture_dir("qwen2moe-mixed"), tmp.path() + "/named/reference.safetensors")
                .find("\"moe_layers\" is [1, 2] but the model's MoE layers are [1, 3]"),
            std::string::npos);
}

TEST(ParityCli, BadReferenceIsAnError) {
  TempFolder tmp;
  write_safetensors(tmp.path() + "/empty.safetensors", {{"x", at::zeros({2})}});
  EXPECT_EQ(run_parity(fixture_dir("llama-gqa"), tmp.path() + "/empty.safetensors").exit_code, 1);
  EXPECT_EQ(run_parity(fixture_dir("llama-gqa"), tmp.path() + "/missing.safetensors").exit_code, 1);
}

}  // namespace
}  // namespace semskip::test
