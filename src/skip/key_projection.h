#pragma once
// Turns residual vectors into cache keys: L2-normalise, optionally project to fewer
// dimensions (a random orthogonal map, or PCA fitted on calibration states), normalise again
// so the index's inner product is a cosine.

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

namespace semskip {

class FlopCounter;
class StateWriter;
class StateReader;

enum class KeyProjectionKind { none, random, pca };
KeyProjectionKind parse_key_projection(const std::string& s, const std::string& what);
const char* key_projection_name(KeyProjectionKind k);

class KeyProjection {
 public:
  // key_dim is ignored for `none` (keys keep the input width).
  KeyProjection(KeyProjectionKind kind, int64_t input_dim, int64_t key_dim, uint64_t seed);

  KeyProjectionKind kind() const { return kind_; }
  int64_t input_dim() const { return input_dim_; }
  int64_t key_dim() const { return kind_ == KeyProjectionKind::none ? input_dim_ : key_dim_; }
  // PCA needs fitting before use; none and random are ready at construction.
  bool ready() const { return kind_ != KeyProjectionKind::pca || matrix_.defined(); }

  // The map (a fitted PCA's included), restored bit for bit into a projection of the same
  // kind and dimensions.
  void save_state(StateWriter& w) const;
  void load_state(StateReader& r);

  // samples: [N, input_dim] residual vectors (normalised inside); N ≥ key_dim.
  void fit(const at::Tensor& samples);

  // h: [N, input_dim] any float dtype/device → fp32 [N, key_dim] unit vectors on the same
  // device. Charges the projection matmul (2·N·d·m) to `flops` under `layer` when given.
  at::Tensor operator()(const at::Tensor& h, FlopCounter* flops = nullptr, int layer = -1) const;

 private:
  KeyProjectionKind kind_;
  int64_t input_dim_;
  int64_t key_dim_;
  at::Tensor matrix_;  // fp32 [input_dim, key_dim], orthonormal columns
};

}  // namespace semskip
