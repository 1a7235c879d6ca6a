// synthetic: requests with known redundancy. Each request picks one of n templates with Zipf(s)
// popularity, fills the template's free slots from `fillers` values each, and replaces words
// by synonyms with probability `paraphrase`. The template is the request's group, so the
// expected repetition is a parameter: P(template k) = (k+1)^-s / H(n, s).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "workloads/loaders/loader_common.h"
#include "workloads/loaders/synthetic.h"

namespace semskip {

std::vector<double> zipf_probabilities(int64_t n, double s) {
  SEMSKIP_THROW_IF_NOT_MSG(n >= 1, "zipf: n must be >= 1, got {}", n);
  std::vector<double> p(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t k = 0; k < n; ++k) sum += p[static_cast<size_t>(k)] = std::pow(double(k + 1), -s);
  for (double& v : p) v /= sum;
  return p;
}

namespace {

class SyntheticSource : public RequestSource {
 public:
  SyntheticSource(const WorkloadSpec& spec, const WorkloadContext& ctx)
      : spec_(spec), ctx_(ctx), vocab_(SyntheticVocabulary::get()),
        tmpl_(resolve_chat_template(spec, ctx)), num_(spec.get_int("num")),
        n_templates_(spec.get_int("templates")), fillers_(spec.get_int("fillers")),
        paraphrase_(spec.get_double("paraphrase")), output_len_(spec.get_int("output_len")),
        seed_(spec.seed()) {
    refuse_trace(spec);
    const double s = spec.get_double("zipf");
    SEMSKIP_THROW_IF_NOT_MSG(num_ >= 0, "workload '{}': num must be >= 0", spec.text());
    SEMSKIP_THROW_IF_NOT_MSG(n_templates_ >= 1 && n_templates_ <= vocab_.max_templates(),
                             "workload '{}': templates must be in [1, {}]", spec.text(),
                             vocab_.max_templates());
    SEMSKIP_THROW_IF_NOT_MSG(fillers_ >= 1 && fillers_ <= vocab_.max_fillers(),
                             "workload '{}': fillers must be in [1, {}]", spec.text(),
                             vocab_.max_fillers());
    SEMSKIP_THROW_IF_NOT_MSG(s >= 0, "workload '{}': zipf must be >= 0", spec.text());
    SEMSKIP_THROW_IF_NOT_MSG(paraphrase_ >= 0 && paraphrase_ <= 1,
                             "workload '{}': paraphrase must be in [0, 1]", spec.text());
    SEMSKIP_THROW_IF_NOT_MSG(output_len_ >= 0, "workload '{}': output_len must be >= 0", spec.text());
    std::vector<double> p = zipf_probabilities(n_templates_, s);
    cdf_.resize(p.size());
    double acc = 0;
    for (size_t k = 0; k < p.size(); ++k) cdf_[k] = acc += p[k];
    cdf_.back() = 1.0;  // rounding must not leave a gap above the last template
  }

  std::optional<Request> next() override {
    if (i_ >= num_) return std::nullopt;
    const int64_t i = i_++;
    Rng rng = Rng::for_stream(seed_, static_cast<uint64_t>(i));
    const double u = rng.uniform();
    const int64_t t = std::upper_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
    Request r;
    r.group = t;
    const std::string text = vocab_.paraphrase(vocab_.render(t, fillers_, rng), paraphrase_, rng);
    r.prompt_text = render_chat({{ChatRole::user, text}}, tmpl_, true);
    r.prompt_tokens = encode_if(ctx_, r.prompt_text, "synthetic workload");
    r.reference_text = vocab_.answer(t, rng);
    r.reference_tokens = encode_if(ctx_, r.reference_text, "synthetic workload");
    r.n_tokens_output = output_len_;
    r.source_file = "synthetic";
    r.source_id = std::to_string(i);
    return r;
  }

 private:
  WorkloadSpec spec_;
  WorkloadContext ctx_;
  const SyntheticVocabulary& vocab_;
  ChatTemplate tmpl_;
  int64_t num_, n_templates_, fillers_;
  double paraphrase_;
  int64_t output_len_;
  uint64_t seed_;
  std::vector<double> cdf_;  // [templates], cumulative popularity
  int64_t i_ = 0;
};

}  // namespace

std::unique_ptr<RequestSource> open_synthetic(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                              LoadCounters&) {
  return std::make_unique<SyntheticSource>(spec, ctx);
}

}  // namespace semskip
