// Building models: both config.json layouts, checkpoints vs random init, the embedded trained
// models, parameter counts and the FLOP formulas `semskip info` prints.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <torch/version.h>

#include "metrics/flop_formulas.h"
#include "model/generation.h"
#include "model/layer_dims.h"
#include "model_test_util.h"

namespace semskip::test {
namespace {

class BuildPerFixture : public ::testing::TestWithParam<std::string> {};

// reference.json's hf_config is the same model in the newer layout (rope_parameters, dtype).
TEST_P(BuildPerFixture, NewConfigLayoutBuildsTheSameModel) {
  const nlohmann::json hf = fixture_json(GetParam())["hf_config"];
  ASSERT_TRUE(hf.contains("rope_parameters"));
  const ModelConfig c = ModelConfig::from_json(hf, "reference.json:hf_config");
  const Checkpoint ckpt(fixture_dir(GetParam()));
  CheckpointWeights w(ckpt, at::kFloat, at::kCPU);
  ModelOptions o;
  o.attn_impl = AttnImpl::eager;
  const Transformer from_new = Transformer::build(c, w, o);
  const Transformer from_classic = load_fixture(GetParam());
  const SafetensorsFile ref(fixture_dir(GetParam()) + "/reference.safetensors");
  const at::Tensor ids = ref.tensor("ids_1").unsqueeze(0);
  EXPECT_TRUE(at::equal(from_new.forward(ids), from_classic.forward(ids)));
  EXPECT_EQ(from_new.config().rope_theta, from_classic.config().rope_theta);
}

// Parameters counted from the built blocks equal the tensors in the checkpoint.
TEST_P(BuildPerFixture, ParameterCountEqualsCheckpoint) {
  const Transformer model = load_fixture(GetParam());
  const Checkpoint ckpt(fixture_dir(GetParam()));
  int64_t n = 0;
  for (const std::string& name : ckpt.names()) {
    if (model.config().tie_word_embeddings && name == "lm_head.weight") continue;
    n += ckpt.get(name, at::kFloat, at::kCPU).numel();
  }
  EXPECT_EQ(model.n_params(), n);
  // Tied embeddings: the head is the embedding matrix itself, not a copy.
  EXPECT_EQ(model.lm_head_linear().weight.data_ptr() == model.embed_tokens().data_ptr(),
            model.config().tie_word_embeddings);
  EXPECT_EQ(model.config().tie_word_embeddings, GetParam() == "qwen2-tied");
  MetaWeights meta(at::kFloat);
  EXPECT_EQ(Transformer::build(model.config(), meta, ModelOptions{}).n_params(), n);
}

TEST_P(BuildPerFixture, RandomInitBuildsAndRunsFromTheConfigAlone) {
  ModelOptions o;
  o.random_init = true;
  o.seed = 7;
  const Transformer a = Transformer::load(fixture_dir(GetParam()), o);
  const Transformer b = Transformer::load(fixture_dir(GetParam()), o);
  o.seed = 8;
  const Transformer c = Transformer::load(fixture_dir(GetParam()), o);
  const at::Tensor ids = at::arange(11, at::kLong).unsqueeze(0);
  const at::Tensor la = a.forward(ids);
  EXPECT_EQ(la.sizes(), (at::IntArrayRef{1, 11, a.config().vocab_size}));
  EXPECT_TRUE(la.isfinite().all().item<bool>());
  EXPECT_TRUE(at::equal(la, b.forward(ids)));
  EXPECT_FALSE(at::equal(la, c.forward(ids)));
  // N(0, initializer_range = 0.02) matrices, unit norms, as Hugging Face initialises them.
  const at::Tensor wq = a.layer(0).attention.q_proj.weight;
  EXPECT_NEAR(wq.std().item<double>(), 0.02, 0.002);
  EXPECT_TRUE(at::equal(a.layer(0).input_norm.weight, at::ones_like(a.layer(0).input_norm.weight)));
  EXPECT_EQ(a.n_params(), load_fixture(GetParam()).n_params());
  GenerateOptions go;
  go.max_new_tokens = 4;
  EXPECT_EQ(generate_greedy(a, {{1, 2, 3}}, go).tokens[0].size(), 4u);
}

// One decode step at context N charges each layer what layer_token_flops says (the formula
// `semskip info` prints), routed experts included.
TEST_P(BuildPerFixture, ExecutedDecodeFlopsEqualThePerTokenFormula) {
  const Transformer model = load_fixture(GetParam());
  const ModelConfig& c = model.config();
  const int64_t context = 17;
  KvCache cache = model.make_kv_cache(1, context);
  ForwardOptions fo;
  fo.kv_cache = &cache;
  model.forward(at::arange(context - 1, at::kLong).unsqueeze(0), fo);
  FlopCounter flops;
  fo.flops = &flops;
  model.forward(at::tensor({5}, at::kLong).unsqueeze(0), fo);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const flops::LayerTokenFlops f = flops::layer_token_flops(layer_dims(c, l), context);
    EXPECT_EQ(flops.by_layer(static_cast<int>(l)), f.total()) << "layer " << l;
    EXPECT_EQ(flops.by_layer(static_cast<int>(l), AttnConvention::dense), f.total()) << "layer " << l;
  }
  EXPECT_EQ(flops.by_group(OpGroup::lm_head), lm_head_token_flops(c));
  EXPECT_EQ(flops.by_group(OpGroup::rotary), flops::rotary(c.head_dim, 1));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BuildPerFixture, ::testing::ValuesIn(fixture_names()), [](const auto& info) {
  std::string n = info.param;
  for (char& ch : n) if (ch == '-') ch = '_';
  return n;
});

TEST(Build, LowPrecisionComputeStaysCloseToFp32) {
  const SafetensorsFile ref(fixture_dir("qwen2moe") + "/reference.safetensors");
  const at::Tensor ids = ref.tensor("ids_1").unsqueeze(0);
  for (DType d : {DType::bf16, DType::fp16}) {
#if TORCH_VERSION_MAJOR < 2
    if (d == DType::fp16) {
      // LibTorch 1.13 has no fp16 matmul on CPU: refused up front rather than failing mid-forward.
      EXPECT_THROW(load_fixture("qwen2moe", AttnImpl::sdpa, d), Error);
      continue;
    }
#endif
    const Transformer model = load_fixture("qwen2moe", AttnImpl::sdpa, d);
    const at::Tensor logits = model.forward(ids);
    EXPECT_EQ(logits.scalar_type(), scalar_type(d));
    EXPECT_LT(rel_err(logits[0], ref.tensor("logits_1")), 5e-2) << dtype_name(d);
  }
}

// Llama-3.1-style options the fixtures do not cover: llama3 RoPE scaling, attention and MLP
// biases; Qwen2-MoE with dense layers mixed in (decoder_sparse_step, mlp_only_layers).
TEST(Build, ConfigVariantsBuildTheBlocksTheyDescribe) {
  nlohmann::json llama = fixture_json("llama-gqa")["hf_config"];
  llama["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                              {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 64}};
  llama["attention_bias"] = true;
  llama["mlp_bias"] = true;
  const ModelConfig lc = ModelConfig::from_json(llama, "llama3-variant");
  RandomWeights rw(1, 0.02, at::kFloat, at::kCPU);
  const Transformer lm = Transformer::build(lc, rw, ModelOptions{});
  EXPECT_TRUE(lm.layer(0).attention.q_proj.bias.defined());
  EXPECT_TRUE(lm.layer(0).attention.o_proj.bias.defined());
  EXPECT_TRUE(lm.layer(0).mlp->down_proj.bias.defined());
  EXPECT_TRUE(at::allclose(lm.rotary().inv_freq(), rope_inv_freq(16, 500000.0, lc.rope_scaling, "x")));
  EXPECT_FALSE(at::allclose(lm.rotary().inv_freq(), rope_inv_freq(16, 500000.0, RopeScaling{}, "x")));
  EXPECT_TRUE(lm.forward(at::arange(9, at::kLong).unsqueeze(0)).isfinite().all().item<bool>());

  nlohmann::json moe = fixture_json("qwen2moe")["hf_config"];
  moe["num_hidden_layers"] = 4;
  moe["layer_types"] = {"full_attention", "full_attention", "full_attention", "full_attention"};
  moe["decoder_sparse_step"] = 2;
  moe["mlp_only_layers"] = {3};
  const ModelConfig mc = ModelConfig::from_json(moe, "qwen2moe-variant");
  const Transformer mm = Transformer::build(mc, rw, ModelOptions{});
  EXPECT_FALSE(mm.layer(0).is_moe());
  EXPECT_TRUE(mm.layer(1).is_moe());
  EXPECT_FALSE(mm.layer(2).is_moe());
  EXPECT_FALSE(mm.layer(3).is_moe());
  EXPECT_EQ(mm.layer(0).mlp->intermediate_size(), 128);
  EXPECT_EQ(mm.layer(1).moe->experts.size(), 8u);
  HookSet hooks;
  int routed_layers = 0;
  for (int64_t l = 0; l < 4; ++l)
    hooks.add(l, HookPoint::expert_indices, [&](const at::Tensor&, const HookSite&) { ++routed_layers; return std::nullopt; });
  ForwardOptions fo;
  fo.hooks = &hooks;
  EXPECT_TRUE(mm.forward(at::arange(9, at::kLong).unsqueeze(0), fo).isfinite().all().item<bool>());
  EXPECT_EQ(routed_layers, 1);
}

// The embedded trained models: bf16 on disk, fp32 compute; parameter counts from their model cards.
TEST(Build, EmbeddedModelsLoadAndGenerate) {
  for (const auto& [name, n_params] : std::vector<std::pair<std::string, int64_t>>{{"tiny-dense", 8431872},
                                                                                    {"tiny-moe", 11095808}}) {
    const Transformer model = Transformer::load(embedded_model(name), ModelOptions{});
    EXPECT_EQ(model.dtype(), at::kFloat);
    EXPECT_EQ(model.n_params(), n_params) << name;
    GenerateOptions go;
    go.max_new_tokens = 8;
    const GenerateResult r = generate_greedy(model, {{10, 20, 30, 40}, {50, 60}}, go);
    ASSERT_EQ(r.tokens.size(), 2u);
    EXPECT_EQ(r.tokens[0].size(), 8u);
    for (int64_t id : r.tokens[0]) EXPECT_TRUE(id >= 0 && id < model.config().vocab_size);
    EXPECT_EQ(r.tokens[1], generate_greedy(model, {{50, 60}}, go).tokens[0]);
  }
}

}  // namespace
}  // namespace semskip::test
