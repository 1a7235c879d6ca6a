#include "engine/run_requests.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/strings.h"
#include "comm/communicator.h"
#include "engine/run_config.h"

namespace semskip {

RunRequests load_run_requests(const WorkloadSpec& spec, const WorkloadContext& ctx, int64_t n_calib,
                              int64_t max_requests, int64_t max_new_tokens, const ShardChoice& choice,
                              Communicator* world) {
  SEMSKIP_ASSERT(choice.n_shards >= 1 && choice.shard >= 0 && choice.shard < choice.n_shards);
  RunRequests out;
  std::unique_ptr<Workload> w = Workload::open(spec, ctx);
  while (static_cast<int64_t>(out.calibration.size()) < n_calib) {
    std::optional<Request> r = w->next();
    if (!r) break;
    out.calibration.push_back(std::move(*r));
  }
  std::vector<Request> all;
  while (max_requests == 0 || static_cast<int64_t>(all.size()) < max_requests) {
    std::optional<Request> r = w->next();
    if (!r) break;
    all.push_back(std::move(*r));
  }
  out.n_evaluated_total = static_cast<int64_t>(all.size());
  out.unit = unit_kind(all);
  std::set<std::string> units, units_available;
  for (const Request& r : all) {
    out.unit_of_id[r.id] = unit_key(r);
    units.insert(unit_key(r));
  }
  units_available = units;
  out.n_available_total = out.n_evaluated_total;
  if (max_requests > 0 && out.n_evaluated_total == max_requests) {
    // The rest of the stream, counted only: a refused entry past the evaluated ones ends the count.
    try {
      while (std::optional<Request> r = w->next()) {
        ++out.n_available_total;
        units_available.insert(unit_key(*r));
      }
    } catch (const Error& e) {
      out.n_available_exact = false;
      out.available_note = e.what();
    }
  }
  out.n_units_evaluated = static_cast<int64_t>(units.size());
  out.n_units_available = static_cast<int64_t>(units_available.size());
  out.counters = w->counters();
  if (choice.n_shards == 1 || all.empty()) {
    out.evaluated = std::move(all);
    return out;
  }

  std::vector<int64_t> sizes;
  for (const Request& r : all) sizes.push_back(r.n_tokens_prompt() + max_new_tokens);
  at::Tensor decided;  // int64 [2, N]: rank 0's request sizes and the shard of each request
  const bool root = !world || world->rank() == 0;
  if (root) {
    const std::vector<int32_t> ranks = assign_ranks(sizes, choice.n_shards, choice.strategy, choice.seed);
    std::vector<int64_t> rows(sizes);
    rows.insert(rows.end(), ranks.begin(), ranks.end());
    decided = at::tensor(rows, at::kLong).view({2, static_cast<int64_t>(sizes.size())});
  }
  if (world && world->size() > 1) decided = world->broadcast(decided, 0);
  decided = decided.contiguous();
  const int64_t n = decided.size(1);
  SEMSKIP_THROW_IF_NOT_MSG(n == static_cast<int64_t>(all.size()),
                           "workload '{}': this rank reads {} evaluated requests, rank 0 reads {}; every rank must "
                           "read the same workload", spec.text(), all.size(), n);
  const int64_t* size0 = decided.data_ptr<int64_t>();
  const int64_t* shard_of = size0 + n;
  for (int64_t i = 0; i < n; ++i) {
    const size_t k = static_cast<size_t>(i);
    SEMSKIP_THROW_IF_NOT_MSG(size0[i] == sizes[k],
                             "workload '{}': request {} has {} tokens on this rank and {} on rank 0; every rank "
                             "must read the same workload", spec.text(), all[k].id, sizes[k], size0[i]);
    if (shard_of[i] == choice.shard) out.evaluated.push_back(std::move(all[k]));
  }
  return out;
}

std::string unit_kind(const std::vector<Request>& requests) {
  std::string kind;
  for (const Request& r : requests) {
    if (r.document.empty()) return "request";
    const std::string k = r.document.substr(0, r.document.find(':'));
    if (kind.empty()) kind = k;
    if (k != kind) return "request";
  }
  return kind.empty() ? "request" : kind;
}

std::string unit_key(const Request& r) { return r.document.empty() ? "request:" + std::to_string(r.id) : r.document; }

SplitParts split_by_units(std::vector<Request> requests, double tune_fraction, uint64_t seed, const std::string& what) {
  SEMSKIP_THROW_IF_NOT_MSG(tune_fraction > 0.0 && tune_fraction < 1.0,
                           "{}: the tune fraction must be in (0, 1), got {}", what, tune_fraction);
  std::vector<std::string> order;
  std::set<std::string> seen;
  for (const Request& r : requests)
    if (seen.insert(unit_key(r)).second) order.push_back(unit_key(r));
  const int64_t n = static_cast<int64_t>(order.size());
  SEMSKIP_THROW_IF_NOT_MSG(n >= 2, "{}: a tune/eval split needs at least 2 {}s, the evaluated requests have {} "
                           "(raise --max-requests or give a larger workload)", what, unit_kind(requests), n);
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    std::uniform_int_distribution<int64_t> pick(0, i);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(pick(rng))]);
  }
  const int64_t n_tune =
      std::clamp<int64_t>(static_cast<int64_t>(std::llround(tune_fraction * static_cast<double>(n))), 1, n - 1);
  const std::set<std::string> tune_units(order.begin(), order.begin() + n_tune);
  SplitParts out;
  out.n_units_tune = n_tune;
  out.n_units_eval = n - n_tune;
  for (Request& r : requests) (tune_units.count(unit_key(r)) ? out.tune : out.eval).push_back(std::move(r));
  return out;
}

double parse_split_fraction(const std::string& text) {
  std::string v = text;
  if (v.rfind("tune=", 0) == 0) v = v.substr(5);
  double f = 0;
  try {
    size_t used = 0;
    f = std::stod(v, &used);
    SEMSKIP_THROW_IF_NOT_MSG(used == v.size(), "trailing text");
  } catch (const std::exception&) {
    SEMSKIP_THROW_MSG("--split: expected F or tune=F (the fraction of units that tune, in (0, 1)), got '{}'", text);
  }
  SEMSKIP_THROW_IF_NOT_MSG(f > 0.0 && f < 1.0, "--split: the tune fraction must be in (0, 1), got '{}'", text);
  return f;
}

std::vector<Request> permuted_requests(const std::vector<Request>& requests, int64_t order, uint64_t seed) {
  std::vector<Request> out = requests;
  if (order == 0) return out;
  std::mt19937_64 rng(seed ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(order)));
  for (int64_t i = static_cast<int64_t>(out.size()) - 1; i > 0; --i) {
    std::uniform_int_distribution<int64_t> pick(0, i);
    std::swap(out[static_cast<size_t>(i)], out[static_cast<size_t>(pick(rng))]);
  }
  return out;
}

namespace {

// The widest PCA keys a policy asks for, 0 without PCA keys: a cascade's proj= and kdim= may
// give one value per segment (joined by '+').
int64_t widest_pca_keys(const Descriptor& d) {
  const std::vector<std::string> proj = split(d.get_string("proj", "none"), '+');
  const std::vector<int64_t> kdims = d.has("kdim") ? d.get_int_list("kdim") : std::vector<int64_t>{32};
  int64_t widest = 0;
  for (size_t i = 0; i < std::max(proj.size(), kdims.size()); ++i)
    if (proj[std::min(i, proj.size() - 1)] == "pca") widest = std::max(widest, kdims[std::min(i, kdims.size() - 1)]);
  return widest;
}

}  // namespace

std::vector<Descriptor> fit_policies_to_calibration(const std::vector<Descriptor>& policies, int64_t n_calib_tokens,
                                                    int64_t n_calib_requests, std::vector<std::string>& warnings) {
  std::set<std::string> defaults;
  for (const std::string& d : RunConfig::default_policies()) defaults.insert(Descriptor::parse(d).text());
  std::vector<Descriptor> out;
  for (const Descriptor& d : policies) {
    const int64_t kdim = widest_pca_keys(d);
    if (kdim <= n_calib_tokens) {
      out.push_back(d);
      continue;
    }
    SEMSKIP_THROW_IF_NOT_MSG(defaults.count(d.text()) > 0,
                             "policy '{}': PCA keys of {} dimensions need at least {} calibration tokens, the {} "
                             "calibration requests have {}; raise --calib-requests, lower kdim= or use proj=none",
                             d.text(), kdim, kdim, n_calib_requests, n_calib_tokens);
    int64_t fit = 1;
    while (fit * 2 <= n_calib_tokens) fit *= 2;
    std::string text = d.text();
    if (fit >= 8) {
      text = std::regex_replace(text, std::regex("kdim=[0-9]+"), "kdim=" + std::to_string(fit));
    } else {
      text = std::regex_replace(text, std::regex(",?proj=pca"), "");
      text = std::regex_replace(text, std::regex(",?kdim=[0-9]+"), "");
    }
    const Descriptor fitted = Descriptor::parse(text);
    warnings.push_back(fmt::format("default policy '{}': PCA keys of {} dimensions need {} calibration tokens, the {} "
                                   "calibration requests have {}; running '{}' instead (set --calib-requests or "
                                   "--policy to choose)", d.text(), kdim, kdim, n_calib_requests, n_calib_tokens,
                                   fitted.text()));
    out.push_back(fitted);
  }
  return out;
}

std::string describe_coverage(const RunRequests& r) {
  const char* more = r.n_available_exact ? "" : "at least ";
  std::string s = fmt::format("evaluated {} of {}{} requests", r.n_evaluated_total, more, r.n_available_total);
  if (r.unit != "request")
    s += fmt::format(" ({} of {}{} {}s)", r.n_units_evaluated, more, r.n_units_available, r.unit);
  return s;
}

}  // namespace semskip
