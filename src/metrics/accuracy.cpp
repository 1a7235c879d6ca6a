#include "metrics/accuracy.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"

namespace semskip {

RequestAccuracy compare_logits(const at::Tensor& logits_full, const at::Tensor& logits_skip,
                               const at::Tensor& targets) {
  SEMSKIP_THROW_IF_NOT_MSG(logits_full.dim() == 2 && logits_full.sizes() == logits_skip.sizes(),
                           "compare_logits: logits must be [T, V] of equal shape");
  // Log-softmax in fp64 so KL of nearly equal distributions is not swamped by rounding.
  at::Tensor lf = at::log_softmax(logits_full.to(at::kCPU, at::kDouble), -1);  // [T, V]
  at::Tensor ls = at::log_softmax(logits_skip.to(at::kCPU, at::kDouble), -1);  // [T, V]
  RequestAccuracy acc;
  acc.n_positions = lf.size(0);
  acc.n_top1_match = lf.argmax(-1).eq(ls.argmax(-1)).sum().item<int64_t>();
  acc.kl_sum = (lf.exp() * (lf - ls)).sum().item<double>();
  if (targets.defined()) {
    at::Tensor tgt = targets.to(at::kCPU, at::kLong);  // [T]
    SEMSKIP_THROW_IF_NOT_MSG(tgt.dim() == 1 && tgt.size(0) == lf.size(0),
                             "compare_logits: targets must be [T]");
    at::Tensor valid = tgt.ge(0);
    at::Tensor idx = valid.nonzero().squeeze(1);
    if (idx.numel() > 0) {
      at::Tensor t = tgt.index_select(0, idx).unsqueeze(1);
      acc.n_targets = idx.numel();
      acc.nll_full_sum = -lf.index_select(0, idx).gather(1, t).sum().item<double>();
      acc.nll_skip_sum = -ls.index_select(0, idx).gather(1, t).sum().item<double>();
    }
  }
  return acc;
}

void compare_generations(const std::vector<int64_t>& full, const std::vector<int64_t>& skip,
                         RequestAccuracy& acc) {
  size_t n = std::min(full.size(), skip.size());
  size_t prefix = 0;
  while (prefix < n && full[prefix] == skip[prefix]) ++prefix;
  acc.n_generated = static_cast<int64_t>(full.size());
  acc.matched_prefix = static_cast<int64_t>(prefix);
  acc.exact_match = full == skip;
}

namespace {
Interval exp_interval(Interval i) { return {std::exp(i.value), std::exp(i.lo), std::exp(i.hi)}; }
}  // namespace

AccuracySummary summarize_accuracy(const std::vector<RequestAccuracy>& requests, int n_boot,
                                   uint64_t seed) {
  return summarize_accuracy(requests,
                            ClusterBootstrap::per_item(static_cast<int64_t>(requests.size()), std::max(n_boot, 1), seed));
}

AccuracySummary summarize_accuracy(const std::vector<RequestAccuracy>& requests, const ClusterBootstrap& boot) {
  SEMSKIP_ASSERT(boot.n_items() == static_cast<int64_t>(requests.size()));
  AccuracySummary s;
  s.n_requests = static_cast<int64_t>(requests.size());
  std::vector<double> pos, match, kl, tgt, nll_f, nll_s, one, exact, prefix;
  for (const RequestAccuracy& r : requests) {
    s.n_positions += r.n_positions;
    pos.push_back(static_cast<double>(r.n_positions));
    match.push_back(static_cast<double>(r.n_top1_match));
    kl.push_back(r.kl_sum);
    tgt.push_back(static_cast<double>(r.n_targets));
    nll_f.push_back(r.nll_full_sum);
    nll_s.push_back(r.nll_skip_sum);
    one.push_back(1.0);
    exact.push_back(r.exact_match ? 1.0 : 0.0);
    prefix.push_back(static_cast<double>(r.matched_prefix));
    s.has_generation = s.has_generation || r.n_generated > 0;
  }
  // One set of draws for every statistic: each is resampled over the same units.
  s.top1_agreement = boot.ratio(match, pos);
  s.kl = boot.ratio(kl, pos);
  s.ppl_full = exp_interval(boot.ratio(nll_f, tgt));
  s.ppl_skip = exp_interval(boot.ratio(nll_s, tgt));
  if (s.has_generation) {
    s.gen_exact_match = boot.ratio(exact, one);
    s.gen_matched_prefix = boot.ratio(prefix, one);
  }
  return s;
}

}  // namespace semskip
