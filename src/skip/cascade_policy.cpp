#include "skip/cascade_policy.h"

#include <algorithm>

#include "core/error.h"
#include "core/strings.h"
#include "skip/state_io.h"

namespace semskip {

std::vector<Descriptor> CascadePolicy::segment_descriptors(const Descriptor& d, int64_t n_layers) {
  const std::string& text = d.text();
  d.check_keys(ResidualPolicy::descriptor_keys());
  for (const char* key : {"p", "r", "tau"})
    SEMSKIP_THROW_IF_NOT_MSG(d.has(key), "policy descriptor '{}': '{}' is required ({})", text, key,
                             std::string(key) == "tau" ? "one value for every segment or one per segment, joined by '+'"
                                                       : "one value per segment, joined by '+'");
  const std::vector<int64_t> p = d.get_int_list("p"), r = d.get_int_list("r");
  const size_t n = p.size();
  SEMSKIP_THROW_IF_NOT_MSG(r.size() == n,
                           "policy descriptor '{}': p and r give one value per segment, joined by '+': p has {} "
                           "value(s), r {}", text, n, r.size());
  for (size_t i = 0; i < n; ++i)
    SEMSKIP_THROW_IF_NOT_MSG(p[i] >= 0 && p[i] < r[i] && r[i] < n_layers,
                             "policy descriptor '{}': segment {} (p={}, r={}) is not a span of the model's layers: "
                             "need 0 ≤ p < r ≤ {} (the last layer)", text, i + 1, p[i], r[i], n_layers - 1);
  for (size_t i = 1; i < n; ++i)
    SEMSKIP_THROW_IF_NOT_MSG(p[i] >= r[i - 1],
                             "policy descriptor '{}': segments {} (p={}, r={}) and {} (p={}, r={}) overlap or are out "
                             "of order: each segment must probe at or after the previous one's resume layer "
                             "(p{} ≥ r{}), so that no layer is skipped by two segments", text, i, p[i - 1], r[i - 1],
                             i + 1, p[i], r[i], i + 1, i);
  // Every other key (tau included): one value for all segments, or one per segment.
  std::vector<std::vector<std::string>> fields(n);
  for (size_t i = 0; i < n; ++i) fields[i] = {fmt::format("p={}", p[i]), fmt::format("r={}", r[i])};
  for (const std::string& key : ResidualPolicy::descriptor_keys()) {
    if (key == "p" || key == "r" || !d.has(key)) continue;
    const std::vector<std::string> values = split(d.get_string(key, ""), '+');
    const bool whole_policy = key == "target" || key == "kv";
    SEMSKIP_THROW_IF_NOT_MSG(!whole_policy || values.size() == 1,
                             "policy descriptor '{}': {} applies to every segment alike (one value, not {})", text,
                             key, values.size());
    SEMSKIP_THROW_IF_NOT_MSG(values.size() == 1 || values.size() == n,
                             "policy descriptor '{}': {} takes one value for every segment or one per segment ({}), "
                             "not {}", text, key, n, values.size());
    for (size_t i = 0; i < n; ++i) fields[i].push_back(key + "=" + values[values.size() == 1 ? 0 : i]);
  }
  std::vector<Descriptor> out;
  for (size_t i = 0; i < n; ++i) out.push_back(Descriptor::parse("residual:" + join(fields[i], ",")));
  return out;
}

CascadePolicy::CascadePolicy(const Descriptor& d, const PolicyEnv& env, int64_t n_layers, int64_t hidden)
    : text_(d.text()) {
  const std::vector<Descriptor> segs = segment_descriptors(d, n_layers);
  for (size_t i = 0; i < segs.size(); ++i) {
    try {
      segments_.push_back(std::make_unique<ResidualPolicy>(segs[i], env, n_layers, hidden));
    } catch (const Error& e) {
      SEMSKIP_THROW_MSG("policy descriptor '{}', segment {}: {}", text_, i + 1, e.what());
    }
  }
}

CascadePolicy::~CascadePolicy() = default;

bool CascadePolicy::needs_calibration() const {
  return std::any_of(segments_.begin(), segments_.end(), [](const auto& s) { return s->needs_calibration(); });
}

bool CascadePolicy::needs_calibration_mlp_out() const {
  return std::any_of(segments_.begin(), segments_.end(), [](const auto& s) { return s->needs_calibration_mlp_out(); });
}

void CascadePolicy::calibrate(const CalibrationSet& calib) {
  // As the evaluator calibrates a residual policy: only the segments that need it.
  for (auto& s : segments_)
    if (s->needs_calibration()) s->calibrate(calib);
}

void CascadePolicy::begin_request(int64_t row) {
  for (auto& s : segments_) s->begin_request(row);
}

void CascadePolicy::begin_step(StepContext& ctx) {
  for (auto& s : segments_) s->begin_step(ctx);
}

void CascadePolicy::after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) {
  for (auto& s : segments_) s->after_layer(layer, h, ctx);
}

bool CascadePolicy::wants_mlp_out(int64_t layer) const {
  return std::any_of(segments_.begin(), segments_.end(), [&](const auto& s) { return s->wants_mlp_out(layer); });
}

void CascadePolicy::after_mlp(int64_t layer, const at::Tensor& mlp_out, StepContext& ctx) {
  for (auto& s : segments_) s->after_mlp(layer, mlp_out, ctx);
}

void CascadePolicy::end_step(StepContext& ctx) {
  for (auto& s : segments_) s->end_step(ctx);
}

CacheStats CascadePolicy::cache_stats() const {
  CacheStats sum;
  for (const auto& s : segments_) {
    const CacheStats c = s->cache_stats();
    sum.add_traffic(c);
    sum.add_contents(c);
  }
  sum.key_dim = segments_.front()->cache_stats().key_dim;
  return sum;
}

void CascadePolicy::save_state(StateWriter& w) const {
  w.tag(text_);
  for (const auto& s : segments_) s->save_state(w);
}

void CascadePolicy::load_state(StateReader& r) {
  r.expect_tag(text_);
  for (auto& s : segments_) s->load_state(r);
}

}  // namespace semskip
