#include "model/weights.h"

#include <mutex>

#include "core/error.h"
#include "model/safetensors.h"

namespace semskip {

CheckpointWeights::CheckpointWeights(const Checkpoint& ckpt, at::ScalarType dtype, at::Device device)
    : ckpt_(ckpt), dtype_(dtype), device_(device) {}

at::Tensor CheckpointWeights::get(const std::string& name, const std::vector<int64_t>& shape,
                                  WeightInit) {
  SEMSKIP_THROW_IF_NOT_MSG(ckpt_.has(name), "checkpoint {}: missing weight '{}'", ckpt_.dir(), name);
  read_.insert(name);
  return ckpt_.get(name, dtype_, device_, shape);
}

at::Tensor CheckpointWeights::get_rows(const std::string& name, const std::vector<int64_t>& shape, int64_t first,
                                       int64_t count, WeightInit) {
  SEMSKIP_THROW_IF_NOT_MSG(ckpt_.has(name), "checkpoint {}: missing weight '{}'", ckpt_.dir(), name);
  read_.insert(name);
  return ckpt_.get_rows(name, first, count, dtype_, device_, shape);
}

std::vector<std::string> CheckpointWeights::unused() const {
  std::vector<std::string> out;
  const std::string buffer = "rotary_emb.inv_freq";
  for (const std::string& n : ckpt_.names()) {
    if (read_.count(n)) continue;
    if (n.size() >= buffer.size() && n.compare(n.size() - buffer.size(), buffer.size(), buffer) == 0) continue;
    out.push_back(n);
  }
  return out;
}

bool CheckpointWeights::has(const std::string& name) const { return ckpt_.has(name); }

RandomWeights::RandomWeights(uint64_t seed, double std, at::ScalarType dtype, at::Device device)
    : seed_(seed), std_(std), dtype_(dtype), device_(device) {
  SEMSKIP_THROW_IF_NOT_MSG(std > 0.0, "random init: standard deviation must be > 0, got {}", std);
}

namespace {

// FNV-1a, mixed with the seed: a weight's random stream depends on its name only.
uint64_t name_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull ^ (seed * 0x9E3779B97F4A7C15ull);
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h & 0x7FFFFFFFFFFFFFFFull;
}

}  // namespace

at::Tensor RandomWeights::get(const std::string& name, const std::vector<int64_t>& shape,
                              WeightInit init) {
  const auto opts = at::TensorOptions().dtype(dtype_).device(device_);
  switch (init) {
    case WeightInit::ones: return at::ones(shape, opts);
    case WeightInit::zeros: return at::zeros(shape, opts);
    case WeightInit::normal: break;
  }
  // A private generator per weight (cloned from the device's default, then reseeded), so the
  // global generator's state is neither read nor changed. Drawn in fp32, then converted.
  at::Generator gen = at::globalContext().defaultGenerator(device_).clone();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(name_seed(seed_, name));
  }
  at::Tensor w = at::empty(shape, opts.dtype(at::kFloat));
  w.normal_(0.0, std_, gen);
  return w.to(dtype_);
}

at::Tensor RandomWeights::get_rows(const std::string& name, const std::vector<int64_t>& shape, int64_t first,
                                   int64_t count, WeightInit init) {
  // The stream is the whole tensor's: drawn whole, the other rows dropped (random weights are
  // for shapes and speed, not for memory).
  return get(name, shape, init).narrow(0, first, count).clone();
}

at::Tensor MetaWeights::get_rows(const std::string&, const std::vector<int64_t>& shape, int64_t, int64_t count,
                                 WeightInit) {
  std::vector<int64_t> rows = shape;
  rows.at(0) = count;
  return at::empty(rows, at::TensorOptions().dtype(dtype_).device(at::kMeta));
}

at::Tensor MetaWeights::get(const std::string&, const std::vector<int64_t>& shape, WeightInit) {
  return at::empty(shape, at::TensorOptions().dtype(dtype_).device(at::kMeta));
}

}  // namespace semskip
