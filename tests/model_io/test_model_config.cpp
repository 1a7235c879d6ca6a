// ModelConfig::from_json / from_file on the parity fixtures' configs (both Hub layouts), the
// embedded models, published model shapes, and every refusal.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "model/model_config.h"
#include "test_util.h"

using namespace semskip;
using nlohmann::json;
using semskip::test::expect_error;

namespace {

std::string config_path(const std::string& name) {
  return SEMSKIP_TEST_DATA "/model_io/configs/" + name + ".json";
}
json load(const std::string& name) { return json::parse(read_file(config_path(name))); }
ModelConfig parse(const json& j) { return ModelConfig::from_json(j, "test.json"); }

std::vector<int64_t> moe_layers(const ModelConfig& c) {
  std::vector<int64_t> out;
  for (int64_t l = 0; l < c.n_layers; ++l)
    if (c.is_moe_layer(l)) out.push_back(l);
  return out;
}

// Expected values read off the fixtures' config.json by hand.
struct Expected {
  std::string name;
  Arch arch;
  int64_t vocab, hidden, inter, layers, heads, kv_heads, head_dim, max_pos;
  double eps, theta;
  bool tied, qkv_bias;
  int64_t experts, top_k, expert_inter, shared_inter;
  bool norm_topk;
  int64_t bos, eos;
};

const Expected kFixtures[] = {
    {"llama-gqa", Arch::llama, 512,   64, 160, 4, 4, 2,     16, 256, 1e-5,
     1e4,         false,       false, 0,  0,   0, 0, false, 1,  2},
    {"qwen2-tied", Arch::qwen2, 512,  64, 128, 4, 4, 1,     16, 256, 1e-6,
     1e6,          true,        true, 0,  0,   0, 0, false, -1, -1},
    {"qwen2moe", Arch::qwen2_moe, 512,  64, 128, 3,  4,  2,     16, 256, 1e-6,
     1e6,        false,           true, 8,  2,   32, 96, false, -1, -1},
    {"mixtral", Arch::mixtral, 512,   64, 96, 3,  4, 2,    16, 256, 1e-5,
     1e6,       false,         false, 4,  2,  96, 0, true, 1,  2},
};

void check(const ModelConfig& c, const Expected& e) {
  SCOPED_TRACE(e.name);
  EXPECT_EQ(c.arch, e.arch);
  EXPECT_EQ(c.model_type, arch_name(e.arch));
  EXPECT_EQ(c.vocab_size, e.vocab);
  EXPECT_EQ(c.hidden_size, e.hidden);
  EXPECT_EQ(c.intermediate_size, e.inter);
  EXPECT_EQ(c.n_layers, e.layers);
  EXPECT_EQ(c.n_heads, e.heads);
  EXPECT_EQ(c.n_kv_heads, e.kv_heads);
  EXPECT_EQ(c.head_dim, e.head_dim);
  EXPECT_EQ(c.max_position_embeddings, e.max_pos);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, e.eps);
  EXPECT_DOUBLE_EQ(c.rope_theta, e.theta);
  EXPECT_EQ(c.rope_scaling.rope_type, "default");
  EXPECT_EQ(c.tie_word_embeddings, e.tied);
  EXPECT_EQ(c.attention_bias, e.qkv_bias);
  EXPECT_FALSE(c.o_proj_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.n_experts, e.experts);
  EXPECT_EQ(c.n_experts_per_tok, e.top_k);
  EXPECT_EQ(c.expert_intermediate_size(), e.expert_inter);
  EXPECT_EQ(c.shared_expert_intermediate_size, e.shared_inter);
  EXPECT_EQ(c.norm_topk_prob, e.norm_topk);
  EXPECT_EQ(c.torch_dtype, "float32");
  EXPECT_EQ(c.bos_token_id, e.bos);
  EXPECT_EQ(c.eos_token_id, e.eos);
  for (int64_t l = 0; l < c.n_layers; ++l) EXPECT_EQ(c.is_moe_layer(l), e.experts > 0) << "layer " << l;
}


// OLMoE (the fixture written by transformers 5.17): every layer MoE, experts of width
// intermediate_size, q/k normalisation, no shared expert; a clip_qkv it would apply is refused.
TEST(ModelConfig, OlmoeFixtureAndClipQkvRefused) {
  const ModelConfig c = ModelConfig::from_file(std::string(SEMSKIP_TEST_DATA) + "/parity/olmoe/config.json");
  EXPECT_EQ(c.arch, Arch::olmoe);
  EXPECT_EQ(c.model_type, "olmoe");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.n_moe_layers(), 3);
  for (int64_t l = 0; l < 3; ++l) EXPECT_TRUE(c.is_moe_layer(l));
  EXPECT_EQ(c.n_experts, 8);
  EXPECT_EQ(c.n_experts_per_tok, 2);
  EXPECT_EQ(c.expert_intermediate_size(), 32);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.shared_expert_intermediate_size, 0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(ModelConfig::from_json(c.to_json(), "round trip").to_json(), c.to_json());
  json j = json::parse(read_file(std::string(SEMSKIP_TEST_DATA) + "/parity/olmoe/config.json"));
  j["clip_qkv"] = 8.0;
  expect_error([&] { parse(j); }, {"test.json", "'clip_qkv'", "not supported"});
}

}  // namespace

TEST(ModelConfig, FixturesInBothLayouts) {
  for (const Expected& e : kFixtures) {
    ModelConfig classic = ModelConfig::from_file(config_path(e.name + ".classic"));
    ModelConfig fresh = ModelConfig::from_file(config_path(e.name + ".new"));
    check(classic, e);
    check(fresh, e);
    EXPECT_EQ(classic.source, config_path(e.name + ".classic"));
    EXPECT_EQ(classic.to_json(), fresh.to_json()) << e.name;
  }
}

TEST(ModelConfig, EmbeddedModels) {
  ModelConfig dense = ModelConfig::from_file(SEMSKIP_SOURCE_DIR "/models/tiny-dense/config.json");
  EXPECT_EQ(dense.arch, Arch::qwen2);
  EXPECT_EQ(dense.n_layers, 10);
  EXPECT_EQ(dense.hidden_size, 256);
  EXPECT_EQ(dense.head_dim, 64);
  EXPECT_EQ(dense.n_kv_heads, 2);
  EXPECT_EQ(dense.vocab_size, 4096);
  EXPECT_TRUE(dense.tie_word_embeddings);
  EXPECT_EQ(dense.torch_dtype, "bfloat16");
  EXPECT_EQ(dense.eos_token_id, 0);

  ModelConfig moe = ModelConfig::from_file(SEMSKIP_SOURCE_DIR "/models/tiny-moe/config.json");
  EXPECT_EQ(moe.arch, Arch::qwen2_moe);
  EXPECT_EQ(moe_layers(moe), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(moe.n_experts, 8);
  EXPECT_EQ(moe.n_experts_per_tok, 2);
  EXPECT_EQ(moe.expert_intermediate_size(), 192);
  EXPECT_EQ(moe.shared_expert_intermediate_size, 384);
}

TEST(ModelConfig, Llama3RopeScalingInBothLayouts) {
  for (const char* layout : {"classic", "new"}) {
    SCOPED_TRACE(layout);
    ModelConfig c = ModelConfig::from_file(config_path(std::string("llama3.1-8b-shape.") + layout));
    EXPECT_EQ(c.arch, Arch::llama);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.n_kv_heads, 8);
    EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
    EXPECT_EQ(c.rope_scaling.rope_type, "llama3");
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
    EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
    EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
    EXPECT_EQ(c.max_position_embeddings, 131072);
    EXPECT_EQ(c.bos_token_id, 128000);
    EXPECT_EQ(c.eos_token_id, 128001);
    EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
    EXPECT_EQ(c.torch_dtype, "bfloat16");
    EXPECT_EQ(ModelConfig::from_json(c.to_json(), "round trip").to_json(), c.to_json());
  }
}

TEST(ModelConfig, LinearScalingWithOldTypeKeyAndLlamaBiases) {
  json j = load("llama-gqa.classic");
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_scaling.rope_type, "linear");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 4.0);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.o_proj_bias);
  EXPECT_TRUE(c.mlp_bias);
  EXPECT_EQ(parse(c.to_json()).to_json(), c.to_json());
}

TEST(ModelConfig, HeadDimAbsentOrNull) {
  json j = load("llama-gqa.classic");
  j.erase("head_dim");
  j["hidden_size"] = 96;  // 96 / 4 heads
  EXPECT_EQ(parse(j).head_dim, 24);
  j["head_dim"] = nullptr;
  EXPECT_EQ(parse(j).head_dim, 24);
  j["head_dim"] = 32;  // explicit and unlike hidden/heads, as Qwen3-style configs do
  EXPECT_EQ(parse(j).head_dim, 32);
}

TEST(ModelConfig, Qwen2MoeSparseLayersFollowHuggingFace) {
  json j = load("qwen2moe.classic");
  j.erase("layer_types");  // it lists the fixture's 3 layers
  j["num_hidden_layers"] = 8;
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  // Sparse iff l not in mlp_only_layers and (l + 1) % 2 == 0: 1, 3, 5, 7 minus 3.
  EXPECT_EQ(moe_layers(parse(j)), (std::vector<int64_t>{1, 5, 7}));
  EXPECT_EQ(parse(j).n_moe_layers(), 3);  // the count without visiting the layers
  j["decoder_sparse_step"] = 3;
  j["mlp_only_layers"] = json::array();
  EXPECT_EQ(moe_layers(parse(j)), (std::vector<int64_t>{2, 5}));
  j["mlp_only_layers"] = nullptr;  // HF treats null as []
  EXPECT_EQ(moe_layers(parse(j)), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(parse(j).n_moe_layers(), 2);
  j["num_experts"] = 0;  // no experts: every layer dense
  ModelConfig dense = parse(j);
  EXPECT_TRUE(moe_layers(dense).empty());
  EXPECT_EQ(dense.n_moe_layers(), 0);
  EXPECT_EQ(dense.n_experts_per_tok, 0);
  j["num_experts"] = 8;
  j["qkv_bias"] = false;
  j["norm_topk_prob"] = true;
  ModelConfig c = parse(j);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(parse(c.to_json()).to_json(), c.to_json());
}

TEST(ModelConfig, PublishedMoeShapes) {
  ModelConfig q = ModelConfig::from_file(config_path("qwen1.5-moe-a2.7b-shape.classic"));
  EXPECT_EQ(q.n_experts, 60);
  EXPECT_EQ(q.n_experts_per_tok, 4);
  EXPECT_EQ(q.expert_intermediate_size(), 1408);
  EXPECT_EQ(q.shared_expert_intermediate_size, 5632);
  EXPECT_EQ(moe_layers(q).size(), 24u);
  EXPECT_EQ(q.head_dim, 128);
  EXPECT_TRUE(q.attention_bias);  // qkv_bias absent: Qwen2-MoE's default is true

  ModelConfig m = ModelConfig::from_file(config_path("mixtral-8x7b-shape.classic"));
  EXPECT_EQ(m.n_experts, 8);
  EXPECT_EQ(m.n_experts_per_tok, 2);
  EXPECT_EQ(m.expert_intermediate_size(), 14336);
  EXPECT_TRUE(m.norm_topk_prob);
  EXPECT_EQ(m.head_dim, 128);
  EXPECT_DOUBLE_EQ(m.rope_theta, 1e6);
}

TEST(ModelConfig, SlidingWindowRefusedOnlyWhenItLimitsAttention) {
  json q = load("qwen2-tied.classic");
  q.erase("layer_types");  // without it, the switch alone decides
  q["sliding_window"] = 128;
  EXPECT_NO_THROW(parse(q));  // use_sliding_window false: no window in force
  q["use_sliding_window"] = true;
  expect_error([&] { parse(q); }, {"test.json", "'sliding_window'", "128", "sliding-window"});
  q["sliding_window"] = 256;  // a window as large as the context limits nothing
  EXPECT_NO_THROW(parse(q));
  q["sliding_window"] = 128;
  q["layer_types"] = {"full_attention", "full_attention", "full_attention", "full_attention"};
  EXPECT_NO_THROW(parse(q));  // no layer uses the window
  q["layer_types"][2] = "sliding_attention";
  expect_error([&] { parse(q); }, {"'sliding_window'"});
  q["layer_types"][2] = "chunked_attention";
  expect_error([&] { parse(q); }, {"'layer_types'", "chunked_attention"});

  json m = load("mixtral.classic");
  m["sliding_window"] = 64;  // Mixtral has no switch: a set window is in force
  expect_error([&] { parse(m); }, {"'sliding_window'", "64"});
  m["sliding_window"] = 4096;
  EXPECT_NO_THROW(parse(m));
}

TEST(ModelConfig, RefusesWhatItDoesNotImplement) {
  json j = load("llama-gqa.classic");
  j["model_type"] = "gpt2";
  expect_error([&] { parse(j); }, {"test.json", "'model_type'", "gpt2", "llama, qwen2, qwen2_moe, mixtral"});

  j = load("llama-gqa.classic");
  j["hidden_act"] = "gelu";
  expect_error([&] { parse(j); }, {"test.json", "'hidden_act'", "gelu"});

  j = load("llama-gqa.classic");
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_error([&] { parse(j); }, {"test.json", "'rope_scaling.rope_type'", "yarn"});

  j = load("llama-gqa.new");
  j["rope_parameters"]["rope_type"] = "dynamic";
  j["rope_parameters"]["factor"] = 2.0;
  expect_error([&] { parse(j); }, {"'rope_parameters.rope_type'", "dynamic"});

  j = load("llama3.1-8b-shape.classic");
  j["rope_scaling"].erase("low_freq_factor");
  expect_error([&] { parse(j); }, {"missing required key 'rope_scaling.low_freq_factor'"});

  j = load("llama3.1-8b-shape.new");
  j["rope_parameters"]["high_freq_factor"] = 1.0;  // not above low_freq_factor
  expect_error([&] { parse(j); }, {"'rope_parameters.high_freq_factor'"});

  j = load("llama-gqa.new");
  j["rope_parameters"]["partial_rotary_factor"] = 0.5;
  expect_error([&] { parse(j); }, {"'rope_parameters.partial_rotary_factor'"});
}

TEST(ModelConfig, ValidationNamesFileAndKey) {
  json j = load("llama-gqa.classic");
  j.erase("hidden_size");
  expect_error([&] { parse(j); }, {"test.json", "missing required key 'hidden_size'"});

  j = load("llama-gqa.classic");
  j["num_hidden_layers"] = "4";
  expect_error([&] { parse(j); }, {"test.json", "'num_hidden_layers'", "integer", "string"});

  j = load("llama-gqa.classic");
  j["hidden_size"] = 64.0;
  expect_error([&] { parse(j); }, {"'hidden_size'", "integer"});

  j = load("llama-gqa.classic");
  j["intermediate_size"] = 0;
  expect_error([&] { parse(j); }, {"'intermediate_size'", "positive", "0"});

  j = load("llama-gqa.classic");
  j["num_key_value_heads"] = 3;
  expect_error([&] { parse(j); }, {"'num_key_value_heads'", "3", "num_attention_heads (4)"});

  j = load("llama-gqa.classic");
  j["rms_norm_eps"] = -1e-5;
  expect_error([&] { parse(j); }, {"'rms_norm_eps'"});

  j = load("llama-gqa.classic");
  j["tie_word_embeddings"] = 1;
  expect_error([&] { parse(j); }, {"'tie_word_embeddings'", "true or false"});

  j = load("llama-gqa.classic");
  j["torch_dtype"] = "float64";
  expect_error([&] { parse(j); }, {"test.json", "'torch_dtype'", "float64"});

  j = load("llama-gqa.classic");
  j["bos_token_id"] = "<s>";
  expect_error([&] { parse(j); }, {"'bos_token_id'"});

  j = load("mixtral.classic");
  j["num_experts_per_tok"] = 5;
  expect_error([&] { parse(j); }, {"'num_experts_per_tok'", "5", "4 experts"});

  j = load("mixtral.classic");
  j.erase("num_local_experts");
  expect_error([&] { parse(j); }, {"missing required key 'num_local_experts'"});

  j = load("qwen2moe.classic");
  j["decoder_sparse_step"] = 0;
  expect_error([&] { parse(j); }, {"'decoder_sparse_step'", "positive"});

  j = load("qwen2moe.classic");
  j["mlp_only_layers"] = {0, 3};
  expect_error([&] { parse(j); }, {"'mlp_only_layers'", "layer 3"});

  j = load("qwen2moe.classic");
  j["mlp_only_layers"] = {0, "1"};
  expect_error([&] { parse(j); }, {"'mlp_only_layers'", "item 1"});

  expect_error([&] { parse(json::array()); }, {"test.json", "JSON object"});
}

TEST(ModelConfig, FileErrors) {
  semskip::test::TempDir tmp;
  const std::string bad = tmp.file("config.json");
  semskip::test::write_bytes(bad, "{\n  \"model_type\": \"llama\",\n  \"hidden_size\": ,\n}\n");
  expect_error([&] { ModelConfig::from_file(bad); }, {bad, "malformed JSON", "line 3"});
  expect_error([&] { ModelConfig::from_file(tmp.file("absent.json")); }, {tmp.file("absent.json")});
  semskip::test::write_bytes(bad, "{\"model_type\": \"llama\"}");
  expect_error([&] { ModelConfig::from_file(bad); }, {bad, "missing required key 'vocab_size'"});
}
