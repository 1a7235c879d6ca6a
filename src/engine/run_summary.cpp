#include "engine/run_summary.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "engine/record_fields.h"
#include "reports/table_text.h"

namespace semskip {

namespace {

CacheStats job_cache(const GatheredResult& r, bool replicated_cache) {
  CacheStats c;
  if (r.ranks.empty()) return c;
  if (replicated_cache) c = r.ranks[0].cache;  // one logical cache, held by every rank
  c.lookups = c.hits = c.vetoed = 0;
  for (const RankRecord& k : r.ranks) {
    c.add_traffic(k.cache);
    if (!replicated_cache) c.add_contents(k.cache);
  }
  c.key_dim = r.ranks[0].cache.key_dim;
  return c;
}

// The slowest rank's seconds and the mean over ranks of one timing.
template <typename Get>
void time_over_ranks(const GatheredResult& r, Get get, double& max_s, double& mean_s) {
  int64_t mx = 0, sum = 0;
  for (const RankRecord& k : r.ranks) {
    mx = std::max(mx, get(k));
    sum += get(k);
  }
  max_s = static_cast<double>(mx) * 1e-9;
  mean_s = r.ranks.empty() ? 0.0 : static_cast<double>(sum) * 1e-9 / static_cast<double>(r.ranks.size());
}

// Per-request sums for the ratio intervals: FLOPs, lookups and hits from the request's step,
// shared by prompt tokens among the step's requests; (token, layer) slots of the step likewise.
struct RequestShares {
  std::vector<double> flops_full, flops_cost, lookups, hits, blocks, block_skips;
};

RequestShares request_shares(const GatheredResult& r) {
  const double n_layers = static_cast<double>(r.layers.n_block_run.size());
  std::map<std::pair<int, int64_t>, const StepRecord*> step_of;
  std::map<std::pair<int, int64_t>, int64_t> step_prompt_tokens;
  for (const StepRecord& st : r.steps) step_of[{st.rank, st.step}] = &st;
  for (const RequestRecord& q : r.requests) step_prompt_tokens[{q.rank, q.step}] += q.n_tokens;
  RequestShares out;
  for (const RequestRecord& q : r.requests) {
    const auto key = std::make_pair(q.rank, q.step);
    const auto it = step_of.find(key);
    const int64_t tokens = step_prompt_tokens[key];
    const double share = tokens > 0 ? static_cast<double>(q.n_tokens) / static_cast<double>(tokens) : 0.0;
    const StepRecord* st = it == step_of.end() ? nullptr : it->second;
    out.flops_full.push_back(st ? share * static_cast<double>(st->flops_full) : 0.0);
    out.flops_cost.push_back(st ? share * static_cast<double>(st->flops_executed + st->flops_overhead) : 0.0);
    out.lookups.push_back(st ? share * static_cast<double>(st->cache_lookups) : 0.0);
    out.hits.push_back(st ? share * static_cast<double>(st->cache_hits) : 0.0);
    out.blocks.push_back(st ? share * static_cast<double>(st->n_tokens) * n_layers : 0.0);
    out.block_skips.push_back(static_cast<double>(q.n_block_skips));
  }
  return out;
}

}  // namespace

PolicySummary summarize(const GatheredResult& r, int n_boot, uint64_t seed, bool replicated_cache,
                        const BootstrapUnits& units) {
  PolicySummary s;
  s.policy = r.policy;
  s.index = r.index;
  s.n_ranks = static_cast<int64_t>(r.ranks.size());
  s.n_requests = static_cast<int64_t>(r.requests.size());
  for (const RankRecord& k : r.ranks) {
    s.n_tokens += k.n_tokens;
    s.flops_full += k.flops_full;
    s.flops_executed += k.flops_executed;
    s.flops_overhead += k.flops_overhead;
    s.flops_insert += k.flops_insert;
    s.flops_train += k.flops_train;
    s.flops_correction += k.flops_correction;
    s.comm_sent_bytes += k.comm.total().bytes_sent;
  }
  s.cache = job_cache(r, replicated_cache);
  s.hit_rate = s.cache.lookups > 0 ? static_cast<double>(s.cache.hits) / static_cast<double>(s.cache.lookups) : 0.0;
  int64_t run = 0, skipped = 0;
  for (size_t l = 0; l < r.layers.n_block_run.size(); ++l) {
    run += r.layers.n_block_run[l];
    skipped += r.layers.n_block_skip[l];
  }
  s.skip_rate = run + skipped > 0 ? static_cast<double>(skipped) / static_cast<double>(run + skipped) : 0.0;
  if (s.flops_full > 0) {
    const double full = static_cast<double>(s.flops_full);
    s.flops_saved_gross = 1.0 - static_cast<double>(s.flops_executed) / full;
    s.flops_saved_net = 1.0 - static_cast<double>(s.flops_executed + s.flops_overhead) / full;
  }
  std::vector<RequestAccuracy> acc;
  for (const RequestRecord& q : r.requests) acc.push_back(q.accuracy);
  std::vector<std::string> keys;
  for (const RequestRecord& q : r.requests) {
    const auto it = units.unit_of_id.find(q.request_id);
    keys.push_back(it != units.unit_of_id.end() ? it->second : "");
  }
  const ClusterBootstrap boot(unit_indices(keys), static_cast<int64_t>(keys.size()), std::max(n_boot, 1), seed);
  s.bootstrap_unit = units.unit;
  s.n_units = boot.n_units();
  s.accuracy = summarize_accuracy(acc, boot);
  // Ratio estimators over the same draws; the point values stay the exact totals above.
  const RequestShares sh = request_shares(r);
  s.hit_rate_ci = boot.ratio(sh.hits, sh.lookups);
  s.skip_rate_ci = boot.ratio(sh.block_skips, sh.blocks);
  const Interval cost = boot.ratio(sh.flops_cost, sh.flops_full);  // (executed + overhead) / full
  s.flops_saved_net_ci = {1.0 - cost.value, 1.0 - cost.hi, 1.0 - cost.lo};
  s.hit_rate_ci.value = s.hit_rate;
  s.skip_rate_ci.value = s.skip_rate;
  s.flops_saved_net_ci.value = s.flops_saved_net;
  time_over_ranks(r, [](const RankRecord& k) { return k.t_full_ns; }, s.t_full_s, s.t_full_s_mean);
  time_over_ranks(r, [](const RankRecord& k) { return k.t_skip_ns; }, s.t_skip_s, s.t_skip_s_mean);
  time_over_ranks(r, [](const RankRecord& k) { return k.t_lookup_ns; }, s.t_lookup_s, s.t_lookup_s_mean);
  time_over_ranks(r, [](const RankRecord& k) { return k.t_comm_ns; }, s.t_comm_s, s.t_comm_s_mean);
  s.speedup = s.t_skip_s > 0 ? s.t_full_s / s.t_skip_s : 0.0;
  s.tokens_per_s = s.t_skip_s > 0 ? static_cast<double>(s.n_tokens) / s.t_skip_s : 0.0;
  return s;
}

report::Table summary_table(const std::vector<PolicySummary>& rows) { return summary_fields().table(rows); }

namespace {

// The table of every result's records: the configuration's columns, then the record's.
template <typename Record, typename RecordsOf>
report::Table keyed_table(const std::vector<GatheredResult>& results, const report::FieldTable<Record>& fields,
                          RecordsOf records_of) {
  const report::FieldTable<GatheredResult>& key = configuration_fields();
  report::Columns cols = key.columns();
  const report::Columns own = fields.columns();
  cols.insert(cols.end(), own.begin(), own.end());
  for (const GatheredResult& r : results) {
    for (const Record& rec : records_of(r)) fields.append(rec, cols, key.append(r, cols));
  }
  report::Table t;
  report::add_columns(t, std::move(cols));
  return t;
}

}  // namespace

report::Table per_layer_table(const std::vector<GatheredResult>& results) {
  return keyed_table(results, layer_fields(), [](const GatheredResult& r) { return layer_records(r); });
}

report::Table per_rank_table(const std::vector<GatheredResult>& results, const std::vector<std::string>& hosts) {
  return keyed_table(results, rank_fields(), [&](const GatheredResult& r) {
    std::vector<RankRecord> ranks = r.ranks;
    for (RankRecord& k : ranks)
      k.host = static_cast<size_t>(k.rank) < hosts.size() ? hosts[static_cast<size_t>(k.rank)] : "";
    return ranks;
  });
}

report::Table requests_table(const std::vector<GatheredResult>& results) {
  return keyed_table(results, request_fields(), [](const GatheredResult& r) -> const auto& { return r.requests; });
}

report::Table steps_table(const std::vector<GatheredResult>& results) {
  return keyed_table(results, step_fields(), [](const GatheredResult& r) -> const auto& { return r.steps; });
}

std::string format_summary_text(const std::vector<PolicySummary>& rows) {
  using report::TextColumn;
  TextColumn policy{"policy", false, {}}, index{"index", false, {}}, hit{"hit_rate", true, {}},
      gross{"saved_gross", true, {}}, net{"saved_net [95% CI]", true, {}}, top1{"top1_agree [95% CI]", true, {}},
      kl{"kl", true, {}}, pplf{"ppl_full", true, {}}, ppl{"ppl", true, {}}, gen{"gen_exact", true, {}},
      cap{"capacity", true, {}};
  bool any_gen = false;
  for (const PolicySummary& s : rows) any_gen = any_gen || s.accuracy.has_generation;
  for (const PolicySummary& s : rows) {
    const AccuracySummary& a = s.accuracy;
    policy.cells.push_back(s.policy);
    index.cells.push_back(s.index.empty() ? "-" : s.index);
    hit.cells.push_back(s.index.empty() ? "-" : fmt::format("{:.1f}%", 100 * s.hit_rate));
    gross.cells.push_back(fmt::format("{:.1f}%", 100 * s.flops_saved_gross));
    net.cells.push_back(fmt::format("{:.1f}% [{:.1f}, {:.1f}]", 100 * s.flops_saved_net, 100 * s.flops_saved_net_ci.lo,
                                    100 * s.flops_saved_net_ci.hi));
    cap.cells.push_back(s.index.empty() ? "-" : std::to_string(s.cache.capacity));
    top1.cells.push_back(fmt::format("{:.1f}% [{:.1f}, {:.1f}]", 100 * a.top1_agreement.value,
                                     100 * a.top1_agreement.lo, 100 * a.top1_agreement.hi));
    kl.cells.push_back(fmt::format("{:.4f}", a.kl.value));
    pplf.cells.push_back(fmt::format("{:.2f}", a.ppl_full.value));
    ppl.cells.push_back(fmt::format("{:.2f}", a.ppl_skip.value));
    gen.cells.push_back(fmt::format("{:.1f}%", 100 * a.gen_exact_match.value));
  }
  std::vector<TextColumn> cols = {policy, index, hit, gross, net, top1, kl, pplf, ppl};
  if (any_gen) cols.push_back(gen);
  cols.push_back(cap);
  std::string out = report::render_text(cols);
  if (!rows.empty())
    out += fmt::format("95% intervals: bootstrap over {} {}s\n", rows[0].n_units, rows[0].bootstrap_unit);
  return out;
}

}  // namespace semskip
