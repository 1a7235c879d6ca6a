// SafetensorsFile and write_safetensors: round trips, hand-made files with known bit
// patterns, and every way a file can lie about itself.

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/strings.h"
#include "model/safetensors.h"
#include "test_util.h"

using namespace semskip;
using semskip::test::expect_error;
using semskip::test::TempDir;
using semskip::test::write_bytes;

namespace {

// A safetensors file written by hand: 8-byte little-endian length, header text, data bytes.
std::string raw_file(const std::string& header, const std::string& data, uint64_t header_len_field) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &header_len_field, 8);
  return out + header + data;
}
std::string raw_file(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return raw_file(header, data, header.size());
}

std::string le16(std::initializer_list<uint16_t> values) {
  std::string out;
  for (uint16_t v : values) {
    out.push_back(static_cast<char>(v & 0xff));
    out.push_back(static_cast<char>(v >> 8));
  }
  return out;
}

std::map<std::string, at::Tensor> every_dtype() {
  at::manual_seed(7);
  return {
      {"f64", at::randn({3, 2}, at::kDouble)},
      {"f32", at::randn({4, 5}, at::kFloat)},
      {"f16", at::randn({7}, at::kFloat).to(at::kHalf)},
      {"bf16", at::randn({2, 3, 2}, at::kFloat).to(at::kBFloat16)},
      {"i64", at::randint(-1000000, 1000000, {5}, at::kLong)},
      {"i32", at::randint(-100000, 100000, {2, 2}, at::kInt)},
      {"i16", at::randint(-30000, 30000, {3}, at::kShort)},
      {"i8", at::randint(-128, 127, {9}, at::kChar)},
      {"u8", at::randint(0, 255, {1, 6}, at::kByte)},
      {"bool", at::randint(0, 2, {5}, at::kByte).to(at::kBool)},
      {"empty", at::empty({0, 4}, at::kFloat)},
      {"scalar", at::full({}, 2.5, at::kFloat)},
  };
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtype) {
  TempDir tmp;
  const std::string path = tmp.file("all.safetensors");
  auto tensors = every_dtype();
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "round trip"}});
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  // The header length is a multiple of 8, so the data section starts aligned (as HF writes).
  std::string bytes = read_file(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);

  SafetensorsFile f(path);
  EXPECT_EQ(f.names().size(), tensors.size());
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "round trip"}}));
  const std::map<std::string, std::string> names = {
      {"f64", "F64"}, {"f32", "F32"}, {"f16", "F16"}, {"bf16", "BF16"}, {"i64", "I64"},   {"i32", "I32"},
      {"i16", "I16"}, {"i8", "I8"},   {"u8", "U8"},   {"bool", "BOOL"}, {"empty", "F32"}, {"scalar", "F32"}};
  for (const auto& kv : tensors) {
    SCOPED_TRACE(kv.first);
    const TensorView& v = f.view(kv.first);
    EXPECT_EQ(v.dtype, names.at(kv.first));
    EXPECT_EQ(v.shape, kv.second.sizes().vec());
    EXPECT_EQ(v.nbytes, kv.second.numel() * kv.second.element_size());
    at::Tensor t = f.tensor(kv.first);
    EXPECT_EQ(t.scalar_type(), kv.second.scalar_type());
    EXPECT_TRUE(at::equal(t, kv.second));
    if (t.numel() > 0) {
      // In place over the mapping, aligned to the item size.
      EXPECT_EQ(t.data_ptr(), static_cast<const void*>(v.data));
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % kv.second.element_size(), 0u);
    }
  }
}

TEST(Safetensors, DecodesBf16AndF16BitPatterns) {
  TempDir tmp;
  const std::string path = tmp.file("bits.safetensors");
  // bf16 is the top half of an IEEE float32: 0x3F80 = 1.0, 0xC000 = -2.0, 0x3FC0 = 1.5,
  // 0x4049 = 3.140625, 0x7F80 = +inf, 0x0001 = 2^-133 (smallest subnormal).
  // f16: 0x3C00 = 1.0, 0xC000 = -2.0, 0x3555 = 0.333251953125, 0x7BFF = 65504 (largest).
  std::string data =
      le16({0x3F80, 0xC000, 0x3FC0, 0x4049, 0x7F80, 0x0001}) + le16({0x3C00, 0xC000, 0x3555, 0x7BFF});
  write_bytes(path, raw_file(R"({"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
                             R"("h":{"dtype":"F16","shape":[4],"data_offsets":[12,20]}})",
                             data));
  SafetensorsFile f(path);
  at::Tensor b = f.tensor("b").to(at::kFloat).reshape({6});
  const float expected_b[] = {1.0f, -2.0f, 1.5f, 3.140625f, INFINITY, std::ldexp(1.0f, -133)};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(b[i].item<float>(), expected_b[i]) << i;
  at::Tensor h = f.tensor("h").to(at::kFloat);
  const float expected_h[] = {1.0f, -2.0f, 0.333251953125f, 65504.0f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(h[i].item<float>(), expected_h[i]) << i;
  EXPECT_TRUE(f.metadata().empty());
}

TEST(Safetensors, TensorKeepsTheMappingAlive) {
  TempDir tmp;
  const std::string path = tmp.file("x.safetensors");
  at::Tensor ref = at::arange(10, at::kFloat);
  write_safetensors(path, {{"x", ref}});
  at::Tensor t;
  {
    SafetensorsFile f(path);
    t = f.tensor("x");
  }
  EXPECT_TRUE(at::equal(t, ref));
}

TEST(Safetensors, EmbeddedTinyDenseBf16) {
  const std::string path = SEMSKIP_SOURCE_DIR "/models/tiny-dense/model.safetensors";
  SafetensorsFile f(path);
  EXPECT_EQ(f.names().size(), 122u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorView& v = f.view("model.embed_tokens.weight");
  EXPECT_EQ(v.dtype, "BF16");
  EXPECT_EQ(v.shape, (std::vector<int64_t>{4096, 256}));
  // First values and the exact float64 sum, decoded from the raw bits by an independent script.
  at::Tensor e = f.tensor("model.embed_tokens.weight");
  EXPECT_EQ(e.scalar_type(), at::kBFloat16);
  at::Tensor first = e.reshape({-1}).slice(0, 0, 4).to(at::kFloat);
  const float expected[] = {-0.1591796875f, 0.12890625f, -0.1064453125f, 0.1669921875f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(first[i].item<float>(), expected[i]) << i;
  EXPECT_NEAR(e.to(at::kDouble).sum().item<double>(), -1247.5403055953793, 1e-9);
  EXPECT_DOUBLE_EQ(f.tensor("model.norm.weight").to(at::kDouble).sum().item<double>(), 373.828125);
}

TEST(Safetensors, RefusesTruncatedAndLyingFiles) {
  TempDir tmp;
  const std::string path = tmp.file("bad.safetensors");
  auto open = [&] { SafetensorsFile f(path); };

  write_bytes(path, std::string("\x10\x00\x00", 3));
  expect_error(open, {path, "truncated", "3 bytes"});

  write_bytes(path, raw_file("{}", "", 1000));
  expect_error(open, {path, "header length 1000 exceeds"});

  write_bytes(path,
              raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')));
  expect_error(open, {path, "'w'", "beyond", "truncated"});

  // A valid file cut short.
  write_safetensors(path, {{"w", at::ones({64}, at::kFloat)}});
  std::string whole = read_file(path);
  write_bytes(path, whole.substr(0, whole.size() - 100));
  expect_error(open, {path, "'w'", "beyond"});

  write_bytes(path,
              raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_error(open, {path, "'w'", "span 8 bytes", "F32", "[3]", "needs 12"});

  write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                             std::string(12, '\0')));
  expect_error(open, {path, "'a'", "'b'", "overlap"});

  // The same name twice (a JSON parser would keep one silently): named as a repeat, not as an
  // overlap, even when the two entries' data do not overlap. Inner objects may repeat names.
  write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                             std::string(16, '\0')));
  expect_error(open, {path, "names tensor 'a' more than once"});

  write_bytes(path, raw_file("{not json at all}", std::string(8, '\0')));
  expect_error(open, {path, "not valid JSON"});

  write_bytes(path, raw_file("[1, 2]", ""));
  expect_error(open, {path, "JSON object"});

  write_bytes(
      path, raw_file(R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_error(open, {path, "'w'", "unsupported dtype 'F8_E4M3'"});

  write_bytes(path,
              raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_error(open, {path, "'w'", "non-negative"});

  write_bytes(path,
              raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", std::string(8, '\0')));
  expect_error(open, {path, "'w'", "data_offsets"});

  write_bytes(path, raw_file(R"({"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})",
                             std::string(8, '\0')));
  expect_error(open, {path, "'w'", "too large"});

  write_bytes(path, raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", std::string(8, '\0')));
  expect_error(open, {path, "'w'", "data_offsets"});

  write_bytes(path, raw_file(R"({"__metadata__":{"format":1}})", ""));
  expect_error(open, {path, "__metadata__", "format"});

  // A BOOL byte that is neither 0 nor 1 is caught when the tensor is made.
  write_bytes(path, raw_file(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
                             std::string("\x01\x02\x00", 3)));
  SafetensorsFile f(path);
  expect_error([&] { f.tensor("m"); }, {path, "'m'", "BOOL"});
  expect_error([&] { f.tensor("absent"); }, {path, "'absent'"});

  expect_error([&] { SafetensorsFile g(tmp.file("nope.safetensors")); },
               {tmp.file("nope.safetensors"), "cannot open"});
}

TEST(Safetensors, WriterRefusesWhatItCannotStore) {
  TempDir tmp;
  const std::string path = tmp.file("w.safetensors");
  expect_error([&] { write_safetensors(path, {{"c", at::ones({2}, at::kComplexFloat)}}); }, {path, "'c'"});
  expect_error([&] { write_safetensors(path, {{"__metadata__", at::ones({2})}}); }, {path, "__metadata__"});
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // Non-contiguous input is written in logical order.
  at::Tensor t = at::arange(6, at::kFloat).reshape({2, 3}).t();
  write_safetensors(path, {{"t", t}});
  EXPECT_TRUE(at::equal(SafetensorsFile(path).tensor("t"), t));
}
