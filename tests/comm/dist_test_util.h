#pragma once
// Helpers of the distribution tests: the MoE models (the parity fixtures made with Hugging
// Face transformers, and the embedded tiny-moe), loaded once per process.

#include <map>
#include <string>

#include "model/transformer.h"

namespace semskip::test {

// "qwen2moe" and "mixtral" are tests/data/parity fixtures; "tiny-moe" is models/tiny-moe.
inline std::string moe_model_dir(const std::string& name) {
  if (name == "tiny-moe") return std::string(SEMSKIP_SOURCE_DIR) + "/models/tiny-moe";
  return std::string(SEMSKIP_TEST_DATA) + "/parity/" + name;
}

inline const Transformer& moe_model(const std::string& name, DType dtype = DType::fp32) {
  static std::map<std::pair<std::string, DType>, Transformer> loaded;
  const auto key = std::make_pair(name, dtype);
  auto it = loaded.find(key);
  if (it == loaded.end()) {
    ModelOptions o;
    o.dtype = dtype;
    o.attn_impl = AttnImpl::eager;
    it = loaded.emplace(key, Transformer::load(moe_model_dir(name), o)).first;
  }
  return it->second;
}

// ‖a − b‖ / ‖b‖ in fp64 (0 when both are zero).
inline double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor ad = a.to(at::kDouble), bd = b.to(at::kDouble);
  const double num = (ad - bd).norm().item<double>(), den = bd.norm().item<double>();
  return den > 0 ? num / den : num;
}

}  // namespace semskip::test
