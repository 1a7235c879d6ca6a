#include "model/layers/rotary.h"

#include <cmath>

#include "core/error.h"

#ifdef SEMSKIP_MODEL_CUDA_KERNELS
#include <optional>

#include <c10/cuda/CUDAGuard.h>

#include "model/cuda/fused_dispatch.h"
#endif

namespace semskip {

at::Tensor rope_inv_freq(int64_t head_dim, double theta, const RopeScaling& scaling,
                         const std::string& source) {
  SEMSKIP_THROW_IF_NOT_MSG(head_dim > 0 && head_dim % 2 == 0, "{}: head_dim must be even and > 0, got {}",
                           source, head_dim);
  const at::Tensor exponents =
      at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / head_dim;
  at::Tensor inv_freq = at::reciprocal(at::pow(theta, exponents));  // fp32 [head_dim / 2]
  const std::string& type = scaling.rope_type;
  if (type == "default") return inv_freq;
  if (type == "linear") {
    SEMSKIP_THROW_IF_NOT_MSG(scaling.factor > 0, "{}: rope scaling factor must be > 0", source);
    return inv_freq / scaling.factor;
  }
  if (type == "llama3") {
    // Wavelengths shorter than original_max/high_freq_factor keep their frequency, longer
    // than original_max/low_freq_factor are slowed by `factor`, and those between are
    // interpolated smoothly (Llama 3.1 long-context recipe).
    const double factor = scaling.factor;
    const double low = scaling.low_freq_factor;
    const double high = scaling.high_freq_factor;
    const double old_len = static_cast<double>(scaling.original_max_position_embeddings);
    SEMSKIP_THROW_IF_NOT_MSG(factor > 0 && high > low && old_len > 0,
                             "{}: llama3 rope scaling needs factor > 0, high_freq_factor > "
                             "low_freq_factor and original_max_position_embeddings > 0",
                             source);
    const double low_freq_wavelen = old_len / low;
    const double high_freq_wavelen = old_len / high;
    const at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
    const at::Tensor smooth = (old_len / wavelen - low) / (high - low);
    const at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    const at::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    return at::where(is_medium, smoothed, scaled);
  }
  SEMSKIP_THROW_MSG("{}: rope_type '{}' is not supported (default, linear, llama3)", source, type);
}

Rotary::Rotary(const ModelConfig& config, at::Device device)
    : head_dim_(config.head_dim),
      inv_freq_(rope_inv_freq(config.head_dim, config.rope_theta, config.rope_scaling, config.source)
                    .to(device)) {}

RopeTable Rotary::table(const at::Tensor& positions, at::ScalarType dtype) const {
  SEMSKIP_ASSERT(positions.dim() == 2);
  const at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;  // fp32 [B, T, hd/2]
  const at::Tensor angles = at::cat({freqs, freqs}, -1);                        // fp32 [B, T, hd]
  const at::Tensor sin_half = freqs.sin();
  return RopeTable{angles.cos().to(dtype), angles.sin().to(dtype), at::cat({-sin_half, sin_half}, -1).to(dtype)};
}

namespace {
// x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂ | x₁]: roll(x, half)·[−sin | sin] gives the
// same products bit for bit (negation is exact), so results equal the reference's in every dtype.
at::Tensor rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin_signed) {
  return x * cos + at::roll(x, x.size(-1) / 2, -1) * sin_signed;
}

#ifdef SEMSKIP_MODEL_CUDA_KERNELS
// The same rotation in one launch (model/cuda/fused_ops.h, equal bit for bit) for a CUDA x
// [d0, d1, d2, hd] whose token dimension is t_dim, tables [B or 1, T or 1, hd]; nullopt where
// the kernel does not apply (the eager expression runs then). SEMSKIP_FUSED_ROPE=0 in the
// environment turns it off, to measure what it saves.
std::optional<at::Tensor> rotate_cuda(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin_signed,
                                      int t_dim) {
  static const bool enabled = cuda::fused_enabled("SEMSKIP_FUSED_ROPE");
  const auto st = x.scalar_type();
  const std::optional<cuda::ElemType> type = cuda::elem_type(st);
  if (!enabled || !type || !x.is_cuda() || x.dim() != 4 || x.stride(3) != 1 || cos.dim() != 3 ||
      cos.scalar_type() != st || sin_signed.scalar_type() != st)
    return std::nullopt;
  const int64_t d0 = x.size(0), n_tokens = x.size(t_dim), hd = x.size(3);
  if ((cos.size(0) != 1 && cos.size(0) != d0) || (cos.size(1) != 1 && cos.size(1) != n_tokens) ||
      cos.size(2) != hd || !cos.sizes().equals(sin_signed.sizes()))
    return std::nullopt;
  const at::Tensor c = cos.expand({d0, n_tokens, hd});
  const at::Tensor s = sin_signed.expand({d0, n_tokens, hd});
  if (c.stride(2) != 1 || !c.strides().equals(s.strides())) return std::nullopt;
  // Laid out tokens before heads, as the eager products would be for these inputs.
  const at::Tensor out = t_dim == 1 ? at::empty(x.sizes(), x.options())
                                    : at::empty({d0, x.size(2), x.size(1), hd}, x.options()).transpose(1, 2);
  cuda::RopeShape shape{};
  for (int d = 0; d < 4; ++d) shape.size[d] = x.size(d);
  for (int d = 0; d < 3; ++d) {
    shape.x_stride[d] = x.stride(d);
    shape.out_stride[d] = out.stride(d);
  }
  shape.t_dim = t_dim;
  shape.table_stride[0] = c.stride(0);
  shape.table_stride[1] = c.stride(1);
  const c10::cuda::CUDAGuard guard(x.device());
  cuda::check(cuda::rope_rotate(*type, x.data_ptr(), c.data_ptr(), s.data_ptr(), out.data_ptr(), shape,
                                cuda::stream_of(x.device())),
              "rotary embedding");
  return out;
}
#endif
}  // namespace

at::Tensor Rotary::apply(const at::Tensor& x, const RopeTable& table) {
#ifdef SEMSKIP_MODEL_CUDA_KERNELS
  if (auto r = rotate_cuda(x, table.cos, table.sin_signed, 2)) return *r;
#endif
  return rotate(x, table.cos.unsqueeze(1), table.sin_signed.unsqueeze(1));  // tables [B, 1, T, hd]
}

at::Tensor Rotary::apply_tokens_first(const at::Tensor& x, const RopeTable& table) {
#ifdef SEMSKIP_MODEL_CUDA_KERNELS
  if (auto r = rotate_cuda(x, table.cos, table.sin_signed, 1)) return *r;
#endif
  return rotate(x, table.cos.unsqueeze(2), table.sin_signed.unsqueeze(2));  // tables [B, T, 1, hd]
}

}  // namespace semskip
