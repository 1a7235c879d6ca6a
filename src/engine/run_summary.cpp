#include "engine/run_summary.h"

#include <algorithm>

#include <fmt/format.h>

#include "reports/table_text.h"

namespace semskip {

namespace {

CacheStats job_cache(const GatheredResult& r, bool replicated_cache) {
  CacheStats c;
  if (r.ranks.empty()) return c;
  if (replicated_cache) c = r.ranks[0].cache;  // one logical cache, held by every rank
  c.lookups = c.hits = c.vetoed = 0;
  for (const RankRecord& k : r.ranks) {
    c.lookups += k.cache.lookups;
    c.hits += k.cache.hits;
    c.vetoed += k.cache.vetoed;
    if (replicated_cache) continue;
    c.insertions += k.cache.insertions;
    c.evictions += k.cache.evictions;
    c.rejected += k.cache.rejected;
    c.size += k.cache.size;
    c.capacity += k.cache.capacity;
    c.value_bytes += k.cache.value_bytes;
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

}  // namespace

PolicySummary summarize(const GatheredResult& r, int n_boot, uint64_t seed, bool replicated_cache) {
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
  s.accuracy = summarize_accuracy(acc, n_boot, seed);
  time_over_ranks(r, [](const RankRecord& k) { return k.t_full_ns; }, s.t_full_s, s.t_full_s_mean);
  time_over_ranks(r, [](const RankRecord& k) { return k.t_skip_ns; }, s.t_skip_s, s.t_skip_s_mean);
  time_over_ranks(r, [](const RankRecord& k) { return k.t_lookup_ns; }, s.t_lookup_s, s.t_lookup_s_mean);
  time_over_ranks(r, [](const RankRecord& k) { return k.t_comm_ns; }, s.t_comm_s, s.t_comm_s_mean);
  s.speedup = s.t_skip_s > 0 ? s.t_full_s / s.t_skip_s : 0.0;
  s.tokens_per_s = s.t_skip_s > 0 ? static_cast<double>(s.n_tokens) / s.t_skip_s : 0.0;
  return s;
}

report::Table summary_table(const std::vector<PolicySummary>& rows) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> n_req, n_tok, f_full, f_exec, f_over, lookups, hits, ins, evi, size, cap, kdim, vbytes;
  std::vector<int64_t> n_ranks, vetoed, sent;
  std::vector<double> t_comm, t_full_mean, t_skip_mean, t_lookup_mean, t_comm_mean, tok_s;
  std::vector<double> hit, skip, gross, net, top1, top1_lo, top1_hi, kl, kl_lo, kl_hi, ppl_full, ppl, ppl_lo, ppl_hi,
      exact, exact_lo, exact_hi, prefix, prefix_lo, prefix_hi, t_full, t_skip, t_lookup, speed;
  for (const PolicySummary& s : rows) {
    policy.push_back(s.policy);
    index.push_back(s.index);
    n_req.push_back(s.n_requests);
    n_tok.push_back(s.n_tokens);
    hit.push_back(s.hit_rate);
    skip.push_back(s.skip_rate);
    f_full.push_back(s.flops_full);
    f_exec.push_back(s.flops_executed);
    f_over.push_back(s.flops_overhead);
    gross.push_back(s.flops_saved_gross);
    net.push_back(s.flops_saved_net);
    const AccuracySummary& a = s.accuracy;
    top1.push_back(a.top1_agreement.value), top1_lo.push_back(a.top1_agreement.lo), top1_hi.push_back(a.top1_agreement.hi);
    kl.push_back(a.kl.value), kl_lo.push_back(a.kl.lo), kl_hi.push_back(a.kl.hi);
    ppl_full.push_back(a.ppl_full.value);
    ppl.push_back(a.ppl_skip.value), ppl_lo.push_back(a.ppl_skip.lo), ppl_hi.push_back(a.ppl_skip.hi);
    exact.push_back(a.gen_exact_match.value), exact_lo.push_back(a.gen_exact_match.lo),
        exact_hi.push_back(a.gen_exact_match.hi);
    prefix.push_back(a.gen_matched_prefix.value), prefix_lo.push_back(a.gen_matched_prefix.lo),
        prefix_hi.push_back(a.gen_matched_prefix.hi);
    lookups.push_back(s.cache.lookups), hits.push_back(s.cache.hits), ins.push_back(s.cache.insertions),
        evi.push_back(s.cache.evictions), size.push_back(s.cache.size), cap.push_back(s.cache.capacity),
        kdim.push_back(s.cache.key_dim), vbytes.push_back(s.cache.value_bytes);
    t_full.push_back(s.t_full_s), t_skip.push_back(s.t_skip_s), t_lookup.push_back(s.t_lookup_s),
        speed.push_back(s.speedup);
    n_ranks.push_back(s.n_ranks), vetoed.push_back(s.cache.vetoed), sent.push_back(s.comm_sent_bytes);
    t_comm.push_back(s.t_comm_s), t_full_mean.push_back(s.t_full_s_mean), t_skip_mean.push_back(s.t_skip_s_mean),
        t_lookup_mean.push_back(s.t_lookup_s_mean), t_comm_mean.push_back(s.t_comm_s_mean),
        tok_s.push_back(s.tokens_per_s);
  }
  report::Table t;
  t.add("policy", policy).add("index", index).add("n_requests", n_req).add("n_tokens", n_tok)
      .add("hit_rate", hit).add("skip_rate", skip)
      .add("flops_full", f_full).add("flops_executed", f_exec).add("flops_overhead", f_over)
      .add("flops_saved_gross", gross).add("flops_saved_net", net)
      .add("top1_agreement", top1).add("top1_agreement_lo", top1_lo).add("top1_agreement_hi", top1_hi)
      .add("kl", kl).add("kl_lo", kl_lo).add("kl_hi", kl_hi)
      .add("ppl_full", ppl_full).add("ppl", ppl).add("ppl_lo", ppl_lo).add("ppl_hi", ppl_hi)
      .add("gen_exact_match", exact).add("gen_exact_match_lo", exact_lo).add("gen_exact_match_hi", exact_hi)
      .add("gen_matched_prefix", prefix).add("gen_matched_prefix_lo", prefix_lo).add("gen_matched_prefix_hi", prefix_hi)
      .add("cache_lookups", lookups).add("cache_hits", hits).add("cache_insertions", ins)
      .add("cache_evictions", evi).add("cache_size", size).add("cache_capacity", cap)
      .add("cache_key_dim", kdim).add("cache_value_bytes", vbytes)
      .add("t_full_s", t_full).add("t_skip_s", t_skip).add("t_lookup_s", t_lookup).add("speedup", speed)
      .add("n_ranks", n_ranks).add("cache_vetoed", vetoed).add("t_comm_s", t_comm)
      .add("t_full_s_mean", t_full_mean).add("t_skip_s_mean", t_skip_mean).add("t_lookup_s_mean", t_lookup_mean)
      .add("t_comm_s_mean", t_comm_mean).add("tokens_per_s", tok_s).add("comm_sent_bytes", sent);
  return t;
}

report::Table per_layer_table(const std::vector<GatheredResult>& results) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> layer, run, skip, mlp, prop, f_full, f_exec;
  for (const GatheredResult& r : results) {
    for (size_t l = 0; l < r.layers.n_block_run.size(); ++l) {
      policy.push_back(r.policy);
      index.push_back(r.index);
      layer.push_back(static_cast<int64_t>(l));
      run.push_back(r.layers.n_block_run[l]);
      skip.push_back(r.layers.n_block_skip[l]);
      mlp.push_back(r.layers.n_mlp_skip[l]);
      prop.push_back(r.layers.n_kv_propagated[l]);
      f_full.push_back(r.layer_flops_full[l]);
      f_exec.push_back(r.layer_flops_executed[l]);
    }
  }
  report::Table t;
  t.add("policy", policy).add("index", index).add("layer", layer).add("n_block_run", run)
      .add("n_block_skip", skip).add("n_mlp_skip", mlp).add("n_kv_propagated", prop)
      .add("flops_full", f_full).add("flops_executed", f_exec);
  return t;
}

report::Table per_rank_table(const std::vector<GatheredResult>& results, const std::vector<std::string>& hosts) {
  std::vector<std::string> policy, index, host;
  std::vector<int64_t> rank, n_req, n_tok, n_steps, f_full, f_exec, f_over, t_full, t_skip, t_lookup, t_comm, t_compute,
      t_full_comm, t_calib, lookups, hits, vetoed, ins, evi, rej, size, cap, vbytes, ep_calls, ep_routed, ep_sent,
      ep_run, ep_recv, ep_t_a2a, ep_t_exp;
  std::vector<double> tok_s;
  std::vector<std::vector<int64_t>> k_calls(kNumCollectiveKinds), k_sent(kNumCollectiveKinds),
      k_recv(kNumCollectiveKinds), k_t(kNumCollectiveKinds);
  for (const GatheredResult& r : results) {
    for (const RankRecord& k : r.ranks) {
      policy.push_back(r.policy), index.push_back(r.index), rank.push_back(k.rank);
      host.push_back(static_cast<size_t>(k.rank) < hosts.size() ? hosts[static_cast<size_t>(k.rank)] : "");
      n_req.push_back(k.n_requests), n_tok.push_back(k.n_tokens), n_steps.push_back(k.n_steps);
      f_full.push_back(k.flops_full), f_exec.push_back(k.flops_executed), f_over.push_back(k.flops_overhead);
      t_full.push_back(k.t_full_ns), t_skip.push_back(k.t_skip_ns), t_lookup.push_back(k.t_lookup_ns);
      t_comm.push_back(k.t_comm_ns), t_compute.push_back(k.t_compute_ns()), t_full_comm.push_back(k.t_full_comm_ns);
      t_calib.push_back(k.t_calib_ns);
      tok_s.push_back(k.t_skip_ns > 0 ? static_cast<double>(k.n_tokens) * 1e9 / static_cast<double>(k.t_skip_ns) : 0.0);
      const CacheStats& c = k.cache;
      lookups.push_back(c.lookups), hits.push_back(c.hits), vetoed.push_back(c.vetoed), ins.push_back(c.insertions);
      evi.push_back(c.evictions), rej.push_back(c.rejected), size.push_back(c.size), cap.push_back(c.capacity);
      vbytes.push_back(c.value_bytes);
      for (size_t i = 0; i < kNumCollectiveKinds; ++i) {
        k_calls[i].push_back(k.comm.by_kind[i].n_calls), k_sent[i].push_back(k.comm.by_kind[i].bytes_sent);
        k_recv[i].push_back(k.comm.by_kind[i].bytes_recv), k_t[i].push_back(k.comm.by_kind[i].t_ns);
      }
      const EpStats& e = k.ep;
      ep_calls.push_back(e.n_calls), ep_routed.push_back(e.n_pairs_routed), ep_sent.push_back(e.n_pairs_sent);
      ep_run.push_back(e.n_pairs_run), ep_recv.push_back(e.n_pairs_recv), ep_t_a2a.push_back(e.t_alltoall_ns);
      ep_t_exp.push_back(e.t_experts_ns);
    }
  }
  report::Table t;
  t.add("policy", policy).add("index", index).add("rank", rank).add("host", host).add("n_requests", n_req)
      .add("n_tokens", n_tok).add("n_steps", n_steps).add("flops_full", f_full).add("flops_executed", f_exec)
      .add("flops_overhead", f_over).add("t_full_ns", t_full).add("t_skip_ns", t_skip).add("t_lookup_ns", t_lookup)
      .add("t_comm_ns", t_comm).add("t_compute_ns", t_compute).add("t_full_comm_ns", t_full_comm)
      .add("t_calib_ns", t_calib).add("tokens_per_s", tok_s)
      .add("cache_lookups", lookups).add("cache_hits", hits).add("cache_vetoed", vetoed)
      .add("cache_insertions", ins).add("cache_evictions", evi).add("cache_rejected", rej).add("cache_size", size)
      .add("cache_capacity", cap).add("cache_value_bytes", vbytes);
  for (size_t i = 0; i < kNumCollectiveKinds; ++i) {
    const std::string name = collective_name(static_cast<CollectiveKind>(i));
    t.add("comm_" + name + "_n_calls", k_calls[i]).add("comm_" + name + "_sent_bytes", k_sent[i])
        .add("comm_" + name + "_recv_bytes", k_recv[i]).add("comm_" + name + "_t_ns", k_t[i]);
  }
  t.add("ep_n_calls", ep_calls).add("ep_n_pairs_routed", ep_routed).add("ep_n_pairs_sent", ep_sent)
      .add("ep_n_pairs_run", ep_run).add("ep_n_pairs_recv", ep_recv).add("ep_t_alltoall_ns", ep_t_a2a)
      .add("ep_t_experts_ns", ep_t_exp);
  return t;
}

report::Table requests_table(const std::vector<GatheredResult>& results) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> id, rank, step, n_tok, bskip, mskip, npos, nmatch, ntgt, ngen, prefix, exact;
  std::vector<double> kl, nll_full, nll;
  for (const GatheredResult& r : results) {
    for (const RequestRecord& q : r.requests) {
      policy.push_back(r.policy), index.push_back(r.index), id.push_back(q.request_id), step.push_back(q.step);
      rank.push_back(q.rank);
      n_tok.push_back(q.n_tokens), bskip.push_back(q.n_block_skips), mskip.push_back(q.n_mlp_skips);
      const RequestAccuracy& a = q.accuracy;
      npos.push_back(a.n_positions), nmatch.push_back(a.n_top1_match), ntgt.push_back(a.n_targets);
      kl.push_back(a.kl_sum), nll_full.push_back(a.nll_full_sum), nll.push_back(a.nll_skip_sum);
      ngen.push_back(a.n_generated), prefix.push_back(a.matched_prefix), exact.push_back(a.exact_match ? 1 : 0);
    }
  }
  report::Table t;
  t.add("policy", policy).add("index", index).add("request_id", id).add("step", step).add("n_tokens", n_tok)
      .add("n_block_skips", bskip).add("n_mlp_skips", mskip).add("n_positions", npos)
      .add("n_top1_match", nmatch).add("kl_sum", kl).add("n_targets", ntgt).add("nll_full_sum", nll_full)
      .add("nll_sum", nll).add("n_generated", ngen).add("gen_matched_prefix", prefix).add("gen_exact_match", exact)
      .add("rank", rank);
  return t;
}

report::Table steps_table(const std::vector<GatheredResult>& results) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> step, rank, n_req, n_tok, f_full, f_exec, f_over, t_full, t_skip, t_lookup, t_comm, sent, recv,
      t_full_comm, lookups, hits, vetoed, csize;
  for (const GatheredResult& r : results) {
    for (const StepRecord& s : r.steps) {
      policy.push_back(r.policy), index.push_back(r.index), step.push_back(s.step), n_req.push_back(s.n_requests);
      rank.push_back(s.rank);
      n_tok.push_back(s.n_tokens), f_full.push_back(s.flops_full), f_exec.push_back(s.flops_executed);
      f_over.push_back(s.flops_overhead), t_full.push_back(s.t_full_ns), t_skip.push_back(s.t_skip_ns);
      t_lookup.push_back(s.t_lookup_ns), t_comm.push_back(s.t_comm_ns), sent.push_back(s.comm_sent_bytes);
      recv.push_back(s.comm_recv_bytes), t_full_comm.push_back(s.t_full_comm_ns);
      lookups.push_back(s.cache_lookups), hits.push_back(s.cache_hits), vetoed.push_back(s.cache_vetoed);
      csize.push_back(s.cache_size);
    }
  }
  report::Table t;
  t.add("policy", policy).add("index", index).add("step", step).add("n_requests", n_req).add("n_tokens", n_tok)
      .add("flops_full", f_full).add("flops_executed", f_exec).add("flops_overhead", f_over)
      .add("t_full_ns", t_full).add("t_skip_ns", t_skip).add("t_lookup_ns", t_lookup)
      .add("rank", rank).add("t_comm_ns", t_comm).add("comm_sent_bytes", sent).add("comm_recv_bytes", recv)
      .add("t_full_comm_ns", t_full_comm).add("cache_lookups", lookups).add("cache_hits", hits)
      .add("cache_vetoed", vetoed).add("cache_size", csize);
  return t;
}

std::string format_summary_text(const std::vector<PolicySummary>& rows) {
  using report::TextColumn;
  TextColumn policy{"policy", false, {}}, index{"index", false, {}}, hit{"hit_rate", true, {}},
      gross{"saved_gross", true, {}}, net{"saved_net", true, {}}, top1{"top1_agree [95% CI]", true, {}},
      kl{"kl", true, {}}, pplf{"ppl_full", true, {}}, ppl{"ppl", true, {}}, gen{"gen_exact", true, {}};
  bool any_gen = false;
  for (const PolicySummary& s : rows) any_gen = any_gen || s.accuracy.has_generation;
  for (const PolicySummary& s : rows) {
    const AccuracySummary& a = s.accuracy;
    policy.cells.push_back(s.policy);
    index.cells.push_back(s.index.empty() ? "-" : s.index);
    hit.cells.push_back(s.index.empty() ? "-" : fmt::format("{:.1f}%", 100 * s.hit_rate));
    gross.cells.push_back(fmt::format("{:.1f}%", 100 * s.flops_saved_gross));
    net.cells.push_back(fmt::format("{:.1f}%", 100 * s.flops_saved_net));
    top1.cells.push_back(fmt::format("{:.1f}% [{:.1f}, {:.1f}]", 100 * a.top1_agreement.value,
                                     100 * a.top1_agreement.lo, 100 * a.top1_agreement.hi));
    kl.cells.push_back(fmt::format("{:.4f}", a.kl.value));
    pplf.cells.push_back(fmt::format("{:.2f}", a.ppl_full.value));
    ppl.cells.push_back(fmt::format("{:.2f}", a.ppl_skip.value));
    gen.cells.push_back(fmt::format("{:.1f}%", 100 * a.gen_exact_match.value));
  }
  std::vector<TextColumn> cols = {policy, index, hit, gross, net, top1, kl, pplf, ppl};
  if (any_gen) cols.push_back(gen);
  return report::render_text(cols);
}

}  // namespace semskip
