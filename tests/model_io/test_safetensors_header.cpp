// parse_safetensors_header on hand-built byte strings (the 8-byte length and the JSON written
// here, independently of semskip's writer): what it accepts and each refusal, named.

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "model/safetensors_header.h"
#include "test_util.h"

using namespace semskip;
using semskip::test::expect_error;

namespace {

std::vector<uint8_t> file_of(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

SafetensorsHeader parse(const std::vector<uint8_t>& f) { return parse_safetensors_header(f.data(), f.size(), "w.safetensors"); }

}  // namespace

TEST(SafetensorsHeader, AcceptsEntriesAndMetadata) {
  const auto f = file_of(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"e":{"dtype":"I8","shape":[0],"data_offsets":[32,32]}})",
      32);
  const SafetensorsHeader h = parse(f);
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors.at("a").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors.at("b").begin, 24u);
  EXPECT_EQ(h.tensors.at("b").end, 32u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(safetensors_dtype_size("BF16", "x"), 2u);
}

TEST(SafetensorsHeader, RepeatedNameIsNamedNotCalledAnOverlap) {
  const auto f = file_of(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                         4);
  const std::string msg = expect_error([&] { parse(f); }, {"w.safetensors", "names tensor 'w' more than once"});
  EXPECT_EQ(msg.find("overlap"), std::string::npos) << msg;
}

TEST(SafetensorsHeader, Refusals) {
  expect_error([&] { parse(std::vector<uint8_t>(5, 0)); }, {"w.safetensors", "truncated", "5 bytes"});
  auto big = file_of("{}", 0);
  const uint64_t huge = uint64_t(1) << 62;
  std::memcpy(big.data(), &huge, 8);
  expect_error([&] { parse(big); }, {"w.safetensors", "header length", "exceeds"});
  expect_error([&] { parse(file_of("[1]", 0)); }, {"w.safetensors", "must be a JSON object"});
  expect_error([&] { parse(file_of("{\"a\":", 0)); }, {"w.safetensors", "not valid JSON"});
  expect_error([&] { parse(file_of(R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", 1)); },
               {"tensor 'a'", "unsupported dtype 'F8'"});
  expect_error([&] { parse(file_of(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", 4)); },
               {"tensor 'a'", "too large"});
  expect_error([&] { parse(file_of(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)); },
               {"tensor 'a'", "non-negative"});
  expect_error([&] { parse(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)); },
               {"tensor 'a'", "beyond the data section of 4 bytes"});
  expect_error([&] { parse(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 8)); },
               {"tensor 'a'", "span 4 bytes", "needs 8"});
  expect_error([&] { parse(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                   R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12)); },
               {"tensors 'a' [0, 8] and 'b' [4, 12] overlap"});
}
