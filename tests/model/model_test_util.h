#pragma once
// Helpers of the model tests: the parity fixtures (tests/data/parity/<name>, made with Hugging
// Face transformers) and relative errors.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "model/safetensors.h"
#include "model/transformer.h"

namespace semskip::test {

inline const std::vector<std::string>& fixture_names() {
  static const std::vector<std::string> names = {"llama-gqa", "qwen2-tied", "qwen2moe", "mixtral", "qwen2moe-mixed", "olmoe"};
  return names;
}

inline std::string fixture_dir(const std::string& name) { return std::string(SEMSKIP_TEST_DATA) + "/parity/" + name; }

inline std::string embedded_model(const std::string& name) { return std::string(SEMSKIP_SOURCE_DIR) + "/models/" + name; }

inline nlohmann::json fixture_json(const std::string& name) {
  return nlohmann::json::parse(read_file(fixture_dir(name) + "/reference.json"));
}

inline Transformer load_fixture(const std::string& name, AttnImpl impl = AttnImpl::eager,
                                DType dtype = DType::fp32) {
  ModelOptions o;
  o.attn_impl = impl;
  o.dtype = dtype;
  return Transformer::load(fixture_dir(name), o);
}

// ‖a − b‖ / ‖b‖, in fp64.
inline double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor ad = a.to(at::kCPU, at::kDouble), bd = b.to(at::kCPU, at::kDouble);
  return (ad - bd).norm().item<double>() / bd.norm().item<double>();
}

inline std::vector<int64_t> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace semskip::test
