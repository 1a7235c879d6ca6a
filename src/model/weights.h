#pragma once
// Where a model's weights come from. Architecture code names each weight and its shape once;
// a WeightSource answers with a tensor in the compute dtype on the device: read from a
// checkpoint, drawn at random (--random-init, speed studies of shapes without weights), or
// shape-only on the meta device (parameter counts without memory).

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace semskip {

class Checkpoint;

// How a random source fills a weight, following Hugging Face's _init_weights.
enum class WeightInit {
  normal,  // matrices and embeddings: N(0, std)
  ones,    // RMSNorm scales
  zeros,   // biases
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The weight `name`, exactly of `shape`, in the source's dtype on its device; semskip::Error
  // naming the weight when it is missing or has another shape.
  virtual at::Tensor get(const std::string& name, const std::vector<int64_t>& shape,
                         WeightInit init) = 0;
  // Rows [first, first + count) of the weight `name` of `shape` (its first dimension): what a
  // rank holds of a stacked tensor [E, ...] of experts. Equal to get(name, shape).narrow(0,
  // first, count); a checkpoint reads only those rows' bytes.
  virtual at::Tensor get_rows(const std::string& name, const std::vector<int64_t>& shape, int64_t first,
                              int64_t count, WeightInit init) = 0;
  // A weight the architecture names but this process does not hold (another rank's expert,
  // ModelOptions::experts): never read, and not reported as unused.
  virtual void leave(const std::string& name) { (void)name; }
  // Whether the source holds `name`. Random and meta sources hold nothing by name: architecture
  // code that accepts several spellings of a weight falls back to the canonical one.
  virtual bool has(const std::string& name) const = 0;
  virtual at::ScalarType dtype() const = 0;
  virtual at::Device device() const = 0;
};

// Weights of a Hugging Face checkpoint, converted through Checkpoint::get. It remembers what
// was read, so that tensors the architecture never asked for can be named (unused()).
class CheckpointWeights final : public WeightSource {
 public:
  CheckpointWeights(const Checkpoint& ckpt, at::ScalarType dtype, at::Device device);
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape, WeightInit init) override;
  at::Tensor get_rows(const std::string& name, const std::vector<int64_t>& shape, int64_t first, int64_t count,
                      WeightInit init) override;
  void leave(const std::string& name) override { read_.insert(name); }
  bool has(const std::string& name) const override;
  at::ScalarType dtype() const override { return dtype_; }
  at::Device device() const override { return device_; }
  // The checkpoint's tensors that no get() read nor leave() named, sorted, without those transformers also
  // ignores silently (rotary inv_freq buffers of older checkpoints).
  std::vector<std::string> unused() const;

 private:
  const Checkpoint& ckpt_;
  std::set<std::string> read_;
  at::ScalarType dtype_;
  at::Device device_;
};

// Seeded random weights. Each weight's stream depends only on (seed, name), so a model is the
// same whatever order it is built in; CPU and CUDA draw different numbers for the same seed.
class RandomWeights final : public WeightSource {
 public:
  RandomWeights(uint64_t seed, double std, at::ScalarType dtype, at::Device device);
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape, WeightInit init) override;
  at::Tensor get_rows(const std::string& name, const std::vector<int64_t>& shape, int64_t first, int64_t count,
                      WeightInit init) override;
  bool has(const std::string&) const override { return false; }
  at::ScalarType dtype() const override { return dtype_; }
  at::Device device() const override { return device_; }

 private:
  uint64_t seed_;
  double std_;
  at::ScalarType dtype_;
  at::Device device_;
};

// Shape-only tensors on the meta device: a model built from them has every parameter's shape
// and no storage (parameter counts of Llama-3-8B-sized configs on a laptop).
class MetaWeights final : public WeightSource {
 public:
  explicit MetaWeights(at::ScalarType dtype) : dtype_(dtype) {}
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape, WeightInit init) override;
  at::Tensor get_rows(const std::string& name, const std::vector<int64_t>& shape, int64_t first, int64_t count,
                      WeightInit init) override;
  bool has(const std::string&) const override { return false; }
  at::ScalarType dtype() const override { return dtype_; }
  at::Device device() const override { return at::Device(at::kMeta); }

 private:
  at::ScalarType dtype_;
};

}  // namespace semskip
