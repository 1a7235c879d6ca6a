#include "model/layers/rotary.h"

#include <cmath>

#include "core/error.h"

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
}  // namespace

at::Tensor Rotary::apply(const at::Tensor& x, const RopeTable& table) {
  return rotate(x, table.cos.unsqueeze(1), table.sin_signed.unsqueeze(1));  // tables [B, 1, T, hd]
}

at::Tensor Rotary::apply_tokens_first(const at::Tensor& x, const RopeTable& table) {
  return rotate(x, table.cos.unsqueeze(2), table.sin_signed.unsqueeze(2));  // tables [B, T, 1, hd]
}

}  // namespace semskip
