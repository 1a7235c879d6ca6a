// The memory estimates behind the refusals of absurd shapes before any allocation: weight bytes
// (ModelConfig::weight_bytes, held experts only under expert parallelism) against the parameter
// counts of the checkpoints and of a config counted by hand, dense KV-cache bytes against the
// hand formula, and the refusals' messages.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "model/device_memory.h"
#include "model_test_util.h"

namespace semskip::test {
namespace {

// llama with every bias: vocab 10, d 4, 2 heads and 1 KV head of head_dim 2, SwiGLU width 6,
// 3 layers, untied head.
ModelConfig small_llama() {
  const nlohmann::json j = {{"model_type", "llama"},         {"vocab_size", 10},         {"hidden_size", 4},
                            {"intermediate_size", 6},        {"num_hidden_layers", 3},   {"num_attention_heads", 2},
                            {"num_key_value_heads", 1},      {"head_dim", 2},            {"max_position_embeddings", 16},
                            {"attention_bias", true},        {"mlp_bias", true},         {"tie_word_embeddings", false}};
  return ModelConfig::from_json(j, "small/config.json");
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// By hand: embeddings and head 2·10·4 = 80; per layer q, k, v, o 4·2·2·2 + 4·1·2·2 = 48, their
// biases (2 + 2·1)·2 + 4 = 12, two norms 8, SwiGLU 3·4·6 = 72 with biases 2·6 + 4 = 16: 156;
// three layers 468; final norm 4. 552 values.
TEST(MemoryEstimates, WeightBytesOfASmallConfigByHand) {
  const ModelConfig c = small_llama();
  EXPECT_DOUBLE_EQ(c.weight_bytes(1.0), 552.0);
  EXPECT_DOUBLE_EQ(c.weight_bytes(2.0), 1104.0);
}

// The estimate equals the parameters built from each checkpoint: dense and tied (tiny-dense's
// card gives 8431872), qwen2_moe with a shared expert (tiny-moe: 11095808), dense layers among
// MoE ones (qwen2moe-mixed: decoder_sparse_step 2, mlp_only_layers [0]), mixtral, llama GQA.
TEST(MemoryEstimates, WeightBytesEqualTheCheckpointsParameters) {
  EXPECT_DOUBLE_EQ(ModelConfig::from_file(embedded_model("tiny-dense") + "/config.json").weight_bytes(4.0),
                   8431872.0 * 4.0);
  EXPECT_DOUBLE_EQ(ModelConfig::from_file(embedded_model("tiny-moe") + "/config.json").weight_bytes(2.0),
                   11095808.0 * 2.0);
  for (const std::string& name : fixture_names()) {
    const Transformer model = load_fixture(name);
    EXPECT_DOUBLE_EQ(model.config().weight_bytes(4.0), double(model.n_params()) * 4.0) << name;
  }
}

// An expert-parallel rank counts only its experts: tiny-moe's 6 MoE layers hold 2 of their 8
// experts of 3·256·192 values, 6·6·147456 fewer; the qwen2moe fixture built holding experts
// [2, 5) has as many parameters as the estimate for 3 held.
TEST(MemoryEstimates, WeightBytesCountOnlyTheHeldExperts) {
  const ModelConfig moe = ModelConfig::from_file(embedded_model("tiny-moe") + "/config.json");
  EXPECT_DOUBLE_EQ(moe.weight_bytes(1.0, 2), 11095808.0 - 6.0 * 6.0 * 147456.0);
  EXPECT_DOUBLE_EQ(moe.weight_bytes(1.0, 8), moe.weight_bytes(1.0));
  EXPECT_DOUBLE_EQ(moe.weight_bytes(1.0, 0), 11095808.0 - 6.0 * 8.0 * 147456.0);

  ModelOptions o;
  o.attn_impl = AttnImpl::eager;
  o.experts = ExpertShard{2, 3};
  const Transformer held = Transformer::load(fixture_dir("qwen2moe"), o);
  EXPECT_DOUBLE_EQ(held.config().weight_bytes(4.0, 3), double(held.n_params()) * 4.0);
  EXPECT_LT(held.config().weight_bytes(4.0, 3), held.config().weight_bytes(4.0));
}

TEST(MemoryEstimates, WeightRefusalNamesTheFieldsAndTheHeldExperts) {
  const ModelConfig moe = ModelConfig::from_file(embedded_model("tiny-moe") + "/config.json");
  const double held = moe.weight_bytes(4.0, 2);
  EXPECT_NO_THROW(moe.check_weights_fit(4.0, held, "a test memory", 2));
  const std::string full = message_of([&] { moe.check_weights_fit(4.0, held, "a test memory"); });
  EXPECT_NE(full.find("tiny-moe/config.json: the weights need about"), std::string::npos) << full;
  EXPECT_NE(full.find("num_hidden_layers 6 of intermediate_size"), std::string::npos) << full;
  EXPECT_NE(full.find("with 8 experts), more than the"), std::string::npos) << full;
  EXPECT_NE(full.find("GiB of a test memory"), std::string::npos) << full;
  const std::string part = message_of([&] { moe.check_weights_fit(4.0, held - 1.0, "a test memory", 2); });
  EXPECT_NE(part.find("with 2 of 8 experts held"), std::string::npos) << part;
}

// 2 (K and V) × 3 layers × 1 KV head × head_dim 2 × 2 bytes × 5 sequences × 7 positions = 840;
// tiny-dense: 2 × 10 × 2 × 64 × 4 bytes × 3 × 100 = 3072000.
TEST(MemoryEstimates, KvCacheBytesByHand) {
  EXPECT_DOUBLE_EQ(small_llama().kv_cache_bytes(2.0, 5, 7), 840.0);
  const ModelConfig dense = ModelConfig::from_file(embedded_model("tiny-dense") + "/config.json");
  EXPECT_DOUBLE_EQ(dense.kv_cache_bytes(4.0, 3, 100), 3072000.0);
  // No wrap-around where the product leaves int64.
  EXPECT_DOUBLE_EQ(dense.kv_cache_bytes(4.0, int64_t(1) << 40, int64_t(1) << 30), 10240.0 * 0x1p70);
}

TEST(MemoryEstimates, KvCacheRefusalNamesWhatToLower) {
  const ModelConfig c = small_llama();
  EXPECT_NO_THROW(c.check_kv_cache_fits(2.0, 5, 7, 840.0, "a test memory"));
  const std::string m = message_of([&] { c.check_kv_cache_fits(2.0, 5, 7, 839.0, "a test memory"); });
  for (const char* part : {"small/config.json: the KV cache of 5 sequence(s) × 7 positions needs about 0.0 GiB at 2 bytes",
                           "(2 × num_hidden_layers 3 × num_key_value_heads 1 × head_dim 2 values per position)",
                           "more than the 0.0 GiB of a test memory", "lower the batch (--batch)",
                           "the prompt + --max-new-tokens, or --max-model-len", "config.json fields"})
    EXPECT_NE(m.find(part), std::string::npos) << part << "\n" << m;
}

// The model's own caches are checked against its device's memory (this host's, on CPU) before
// anything is allocated; a cache that fits is built as before.
TEST(MemoryEstimates, MakeKvCacheRefusesBeforeAllocating) {
  const MemoryBound host = memory_bound(at::Device(at::kCPU));
  EXPECT_EQ(host.name, "this host's memory");
  EXPECT_DOUBLE_EQ(host.bytes, ModelConfig::host_memory_bytes());
  EXPECT_GT(host.bytes, 1e8);
  EXPECT_LT(host.bytes, 1e300);

  ModelOptions o;
  const Transformer model = Transformer::load(embedded_model("tiny-dense"), o);
  const KvCache small = model.make_kv_cache(2, 16);
  EXPECT_EQ(small.batch(), 2);
  EXPECT_EQ(small.capacity(), 16);
  const std::string m = message_of([&] { model.make_kv_cache(int64_t(1) << 40, 1024); });
  EXPECT_NE(m.find("the KV cache of 1099511627776 sequence(s) × 1024 positions"), std::string::npos) << m;
  EXPECT_NE(m.find("GiB of this host's memory; lower the batch (--batch)"), std::string::npos) << m;
  EXPECT_THROW(model.check_kv_cache_fits(1, int64_t(1) << 50), Error);
  EXPECT_NO_THROW(model.check_kv_cache_fits(1, 1024));
}

}  // namespace
}  // namespace semskip::test
