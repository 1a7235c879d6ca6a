#include "skip/key_projection.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"
#include "metrics/flop_counter.h"
#include "skip/state_io.h"

namespace semskip {

KeyProjectionKind parse_key_projection(const std::string& s, const std::string& what) {
  if (s == "none") return KeyProjectionKind::none;
  if (s == "random") return KeyProjectionKind::random;
  if (s == "pca") return KeyProjectionKind::pca;
  SEMSKIP_THROW_MSG("{}: unknown key projection '{}' (expected none, random or pca)", what, s);
}

const char* key_projection_name(KeyProjectionKind k) {
  switch (k) {
    case KeyProjectionKind::none: return "none";
    case KeyProjectionKind::random: return "random";
    case KeyProjectionKind::pca: return "pca";
  }
  SEMSKIP_ASSERT(false);
}

KeyProjection::KeyProjection(KeyProjectionKind kind, int64_t input_dim, int64_t key_dim, uint64_t seed)
    : kind_(kind), input_dim_(input_dim), key_dim_(key_dim) {
  if (kind_ == KeyProjectionKind::none) return;
  SEMSKIP_THROW_IF_NOT_MSG(key_dim_ >= 1 && key_dim_ <= input_dim_,
                           "key projection to {} dimensions: must be in 1..{}", key_dim_, input_dim_);
  if (kind_ == KeyProjectionKind::random) {
    // QR of a Gaussian matrix gives a uniformly random orthonormal basis; drawn on the CPU so
    // a seed means the same map everywhere.
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor g = at::randn({input_dim_, key_dim_}, gen, at::TensorOptions().dtype(at::kDouble));
    matrix_ = std::get<0>(at::linalg_qr(g)).to(at::kFloat).contiguous();
  }
}

void KeyProjection::fit(const at::Tensor& samples) {
  if (kind_ != KeyProjectionKind::pca) return;
  SEMSKIP_THROW_IF_NOT_MSG(samples.dim() == 2 && samples.size(1) == input_dim_,
                           "PCA key projection: calibration states must be [N, {}]", input_dim_);
  SEMSKIP_THROW_IF_NOT_MSG(samples.size(0) >= key_dim_,
                           "PCA key projection to {} dimensions needs at least as many calibration "
                           "tokens, got {}", key_dim_, samples.size(0));
  at::Tensor x = samples.to(at::kCPU, at::kDouble);
  x = x / x.norm(2, -1, true).clamp_min(1e-12);
  // Principal directions of the normalised keys; centring is deliberately skipped: cosine
  // similarity is about directions from the origin, and the mean direction carries much of it.
  at::Tensor cov = at::matmul(x.t(), x) / static_cast<double>(x.size(0));  // [d, d]
  auto eig = at::linalg_eigh(cov);                                           // ascending
  at::Tensor vecs = std::get<1>(eig);                                        // [d, d]
  matrix_ = vecs.slice(1, input_dim_ - key_dim_, input_dim_).flip({1}).to(at::kFloat).contiguous();
}

at::Tensor KeyProjection::operator()(const at::Tensor& h, FlopCounter* flops, int layer) const {
  SEMSKIP_THROW_IF_NOT_MSG(h.dim() == 2 && h.size(1) == input_dim_, "cache keys: expected [N, {}] states",
                           input_dim_);
  SEMSKIP_THROW_IF_NOT_MSG(ready(), "PCA key projection used before it was fitted on calibration states");
  at::Tensor x = h.to(at::kFloat);
  x = x / x.norm(2, -1, true).clamp_min(1e-12);
  if (kind_ == KeyProjectionKind::none) return x.contiguous();
  at::Tensor m = matrix_.to(x.device());
  at::Tensor k = at::matmul(x, m);  // fp32 [N, key_dim]
  if (flops) flops->add_matmul(layer, OpGroup::key_proj, x.size(0), key_dim_, input_dim_);
  return (k / k.norm(2, -1, true).clamp_min(1e-12)).contiguous();
}


void KeyProjection::save_state(StateWriter& w) const {
  w.tag("key_projection");
  w.i64s({static_cast<int64_t>(kind_), input_dim_, key_dim_});
  w.tensor(matrix_);
}

void KeyProjection::load_state(StateReader& r) {
  r.expect_tag("key_projection");
  const std::vector<int64_t> v = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(v.size() == 3 && v[0] == static_cast<int64_t>(kind_) && v[1] == input_dim_ &&
                               v[2] == key_dim_,
                           "{}: the saved key projection is of another kind or size than {} [{}, {}]", r.what(),
                           key_projection_name(kind_), input_dim_, key_dim_);
  at::Tensor m = r.tensor();
  SEMSKIP_THROW_IF_NOT_MSG(!m.defined() || (m.dim() == 2 && m.size(0) == input_dim_ && m.size(1) == key_dim_ &&
                                            m.scalar_type() == at::kFloat),
                           "{}: the saved key projection matrix is damaged", r.what());
  matrix_ = m;
}

}  // namespace semskip
