// Checkpoint: single-file and sharded folders, dtype conversion, shape checks, refusals.

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "test_util.h"

using namespace semskip;
using nlohmann::json;
using semskip::test::expect_error;
using semskip::test::TempDir;
using semskip::test::write_bytes;

namespace {

std::map<std::string, at::Tensor> some_weights() {
  at::manual_seed(3);
  return {
      {"model.embed_tokens.weight", at::randn({16, 8}).to(at::kBFloat16)},
      {"model.layers.0.self_attn.q_proj.weight", at::randn({8, 8}).to(at::kBFloat16)},
      {"model.layers.0.self_attn.q_proj.bias", at::randn({8}).to(at::kHalf)},
      {"model.layers.1.mlp.down_proj.weight", at::randn({8, 12})},
      {"model.norm.weight", at::randn({8})},
  };
}

// Writes the weights as two shards and the index that lists them.
void write_sharded(const std::string& dir, const std::map<std::string, at::Tensor>& w) {
  std::map<std::string, at::Tensor> shard[2];
  json weight_map = json::object();
  int i = 0;
  for (const auto& kv : w) {
    int s = i++ < 2 ? 0 : 1;
    shard[s].insert(kv);
    weight_map[kv.first] = fmt::format("model-0000{}-of-00002.safetensors", s + 1);
  }
  write_safetensors(dir + "/model-00001-of-00002.safetensors", shard[0]);
  write_safetensors(dir + "/model-00002-of-00002.safetensors", shard[1]);
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  write_bytes(dir + "/model.safetensors.index.json", index.dump(2));
}

}  // namespace

TEST(Checkpoint, ShardedEqualsSingleFile) {
  TempDir tmp;
  auto w = some_weights();
  const std::string single = tmp.subdir("single"), sharded = tmp.subdir("sharded");
  write_safetensors(single + "/model.safetensors", w);
  write_sharded(sharded, w);

  Checkpoint a(single), b(sharded);
  EXPECT_EQ(a.files().size(), 1u);
  EXPECT_EQ(b.files().size(), 2u);
  ASSERT_EQ(a.names(), b.names());
  EXPECT_EQ(a.names().size(), w.size());
  for (const auto& kv : w) {
    SCOPED_TRACE(kv.first);
    at::Tensor ta = a.get(kv.first, at::kFloat, at::kCPU), tb = b.get(kv.first, at::kFloat, at::kCPU);
    EXPECT_TRUE(at::equal(ta, tb));
    EXPECT_TRUE(at::equal(ta, kv.second.to(at::kFloat)));
  }
  EXPECT_EQ(b.file_of("model.embed_tokens.weight").path(), sharded + "/model-00001-of-00002.safetensors");
  EXPECT_EQ(b.file_of("model.norm.weight").path(), sharded + "/model-00002-of-00002.safetensors");
}

TEST(Checkpoint, ConvertsDtypesIntoOwnedTensors) {
  TempDir tmp;
  auto w = some_weights();
  write_safetensors(tmp.file("model.safetensors"), w);
  Checkpoint c(tmp.path());
  const std::string emb = "model.embed_tokens.weight";
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf, at::kDouble}) {
    at::Tensor t = c.get(emb, dt, at::kCPU, {16, 8});
    EXPECT_EQ(t.scalar_type(), dt);
    EXPECT_TRUE(at::equal(t, w.at(emb).to(dt)));
  }
  EXPECT_TRUE(at::equal(c.get("model.norm.weight", at::kBFloat16, at::kCPU),
                        w.at("model.norm.weight").to(at::kBFloat16)));
  // Even in the stored dtype the result is writable memory of its own, not the mapping.
  at::Tensor t = c.get(emb, at::kBFloat16, at::kCPU);
  EXPECT_NE(t.data_ptr(), c.file_of(emb).tensor(emb).data_ptr());
  t.zero_();
  EXPECT_TRUE(at::equal(c.get(emb, at::kBFloat16, at::kCPU), w.at(emb)));
}

TEST(Checkpoint, ShapeMismatchAndMissingTensor) {
  TempDir tmp;
  write_safetensors(tmp.file("model.safetensors"),
                    {{"w", at::zeros({2, 3})}, {"ids", at::zeros({4}, at::kLong)}});
  Checkpoint c(tmp.path());
  expect_error(
      [&] {
        c.get("w", at::kFloat, at::kCPU, {3, 2});
      },
      {tmp.file("model.safetensors"), "'w'", "shape [2, 3]", "expected [3, 2]"});
  expect_error([&] { c.get("missing.weight", at::kFloat, at::kCPU); }, {"'missing.weight'", tmp.path()});
  expect_error([&] { c.get("ids", at::kFloat, at::kCPU); }, {"'ids'", "cannot be read as"});
  EXPECT_TRUE(at::equal(c.get("ids", at::kLong, at::kCPU, {4}), at::zeros({4}, at::kLong)));
}

TEST(Checkpoint, IndexErrors) {
  TempDir tmp;
  auto w = some_weights();
  const std::string dir = tmp.subdir("m");
  write_sharded(dir, w);
  const std::string index_path = dir + "/model.safetensors.index.json";
  json index = json::parse(read_file(index_path));

  json lying = index;
  lying["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
  write_bytes(index_path, lying.dump());
  expect_error([&] { Checkpoint c(dir); },
               {index_path, "'model.norm.weight'", "model-00001-of-00002.safetensors"});

  json missing = index;
  missing["weight_map"]["model.norm.weight"] = "model-00003-of-00003.safetensors";
  write_bytes(index_path, missing.dump());
  expect_error([&] { Checkpoint c(dir); },
               {index_path, "model-00003-of-00003.safetensors", "does not exist"});

  json escaping = index;
  escaping["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
  write_bytes(index_path, escaping.dump());
  expect_error([&] { Checkpoint c(dir); }, {index_path, "weight_map", "../elsewhere.safetensors"});

  write_bytes(index_path, json{{"metadata", json::object()}}.dump());
  expect_error([&] { Checkpoint c(dir); }, {index_path, "missing required key 'weight_map'"});

  write_bytes(index_path, "{\"weight_map\": {");
  expect_error([&] { Checkpoint c(dir); }, {index_path, "malformed JSON"});
}

TEST(Checkpoint, RefusesPickledAndEmptyFolders) {
  TempDir tmp;
  const std::string pickled = tmp.subdir("pickled");
  write_bytes(pickled + "/pytorch_model.bin", "PK\x03\x04 not really a zip");
  write_bytes(pickled + "/config.json", "{}");
  expect_error([&] { Checkpoint c(pickled); },
               {pickled, "pytorch_model.bin", "execute arbitrary code", "safetensors", "save_pretrained"});

  const std::string pt = tmp.subdir("pt");
  write_bytes(pt + "/consolidated.00.pth", "x");
  expect_error([&] { Checkpoint c(pt); }, {"consolidated.00.pth", "execute arbitrary code"});

  const std::string empty = tmp.subdir("empty");
  expect_error([&] { Checkpoint c(empty); },
               {empty, "no model weights found", "model.safetensors", "model.safetensors.index.json"});

  const std::string renamed = tmp.subdir("renamed");
  write_safetensors(renamed + "/weights.safetensors", {{"w", at::zeros({1})}});
  expect_error([&] { Checkpoint c(renamed); }, {"no model weights found", "weights.safetensors"});

  expect_error([&] { Checkpoint c(tmp.file("absent")); }, {tmp.file("absent"), "not a directory"});

  // Safetensors beside a pickle: the safe file is used and the pickle never opened.
  write_safetensors(pickled + "/model.safetensors", {{"w", at::ones({2})}});
  EXPECT_TRUE(at::equal(Checkpoint(pickled).get("w", at::kFloat, at::kCPU), at::ones({2})));
}

TEST(Checkpoint, EmbeddedTinyDenseMatchesItsConfig) {
  const std::string dir = SEMSKIP_SOURCE_DIR "/models/tiny-dense";
  ModelConfig cfg = ModelConfig::from_file(dir + "/config.json");
  Checkpoint c(dir);
  EXPECT_EQ(c.names().size(), 122u);
  const int64_t d = cfg.hidden_size, q = cfg.n_heads * cfg.head_dim, kv = cfg.n_kv_heads * cfg.head_dim;
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    EXPECT_NO_THROW(c.get(p + "self_attn.q_proj.weight", at::kFloat, at::kCPU, {q, d}));
    EXPECT_NO_THROW(c.get(p + "self_attn.k_proj.bias", at::kFloat, at::kCPU, {kv}));
    EXPECT_NO_THROW(c.get(p + "self_attn.o_proj.weight", at::kFloat, at::kCPU, {d, q}));
    EXPECT_NO_THROW(c.get(p + "mlp.gate_proj.weight", at::kFloat, at::kCPU, {cfg.intermediate_size, d}));
  }
  at::Tensor bias = c.get("model.layers.9.self_attn.k_proj.bias", at::kFloat, at::kCPU, {kv});
  // Decoded from the file's raw bits by an independent script.
  const float expected[] = {-0.0111083984375f, -0.02734375f, -0.038330078125f, 0.0322265625f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(bias[i].item<float>(), expected[i]) << i;
  EXPECT_DOUBLE_EQ(bias.to(at::kDouble).sum().item<double>(), 0.8586387634277344);
  EXPECT_FALSE(c.has("lm_head.weight"));  // tied embeddings: no separate head
}
