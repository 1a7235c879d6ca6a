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

Interval bootstrap_ratio(const std::vector<double>& num, const std::vector<double>& den, int n_boot,
                         uint64_t seed) {
  SEMSKIP_ASSERT(num.size() == den.size());
  Interval out;
  const size_t n = num.size();
  if (n == 0) return out;
  auto ratio = [](double a, double b) { return b != 0.0 ? a / b : 0.0; };
  double sn = 0, sd = 0;
  for (size_t i = 0; i < n; ++i) sn += num[i], sd += den[i];
  out.value = ratio(sn, sd);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> samples(static_cast<size_t>(std::max(n_boot, 1)));
  for (double& s : samples) {
    double a = 0, b = 0;
    for (size_t i = 0; i < n; ++i) {
      size_t j = pick(rng);
      a += num[j];
      b += den[j];
    }
    s = ratio(a, b);
  }
  std::sort(samples.begin(), samples.end());
  auto quantile = [&](double q) {
    double pos = q * static_cast<double>(samples.size() - 1);
    size_t lo = static_cast<size_t>(std::floor(pos));
    size_t hi = std::min(lo + 1, samples.size() - 1);
    return samples[lo] + (pos - static_cast<double>(lo)) * (samples[hi] - samples[lo]);
  };
  out.lo = quantile(0.025);
  out.hi = quantile(0.975);
  return out;
}

namespace {
Interval exp_interval(Interval i) { return {std::exp(i.value), std::exp(i.lo), std::exp(i.hi)}; }
}  // namespace

AccuracySummary summarize_accuracy(const std::vector<RequestAccuracy>& requests, int n_boot,
                                   uint64_t seed) {
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
  // The same seed for every statistic: each is resampled over the same request draws.
  s.top1_agreement = bootstrap_ratio(match, pos, n_boot, seed);
  s.kl = bootstrap_ratio(kl, pos, n_boot, seed);
  s.ppl_full = exp_interval(bootstrap_ratio(nll_f, tgt, n_boot, seed));
  s.ppl_skip = exp_interval(bootstrap_ratio(nll_s, tgt, n_boot, seed));
  if (s.has_generation) {
    s.gen_exact_match = bootstrap_ratio(exact, one, n_boot, seed);
    s.gen_matched_prefix = bootstrap_ratio(prefix, one, n_boot, seed);
  }
  return s;
}

}  // namespace semskip
