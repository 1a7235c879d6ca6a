#include "engine/run_summary.h"

#include <fmt/format.h>

#include "reports/table_text.h"

namespace semskip {

PolicySummary summarize(const PolicyResult& r, int n_boot, uint64_t seed) {
  PolicySummary s;
  s.policy = r.policy;
  s.index = r.index;
  s.n_requests = static_cast<int64_t>(r.requests.size());
  for (const StepRecord& st : r.steps) s.n_tokens += st.n_tokens;
  s.cache = r.cache;
  s.hit_rate = r.cache.lookups > 0 ? static_cast<double>(r.cache.hits) / static_cast<double>(r.cache.lookups) : 0.0;
  int64_t run = 0, skipped = 0;
  for (size_t l = 0; l < r.layers.n_block_run.size(); ++l) {
    run += r.layers.n_block_run[l];
    skipped += r.layers.n_block_skip[l];
  }
  s.skip_rate = run + skipped > 0 ? static_cast<double>(skipped) / static_cast<double>(run + skipped) : 0.0;
  s.flops_full = r.flops_full.total_model(AttnConvention::causal);
  s.flops_executed = r.flops_skip.total_model(AttnConvention::causal);
  s.flops_overhead = r.flops_skip.total_overhead();
  if (s.flops_full > 0) {
    const double full = static_cast<double>(s.flops_full);
    s.flops_saved_gross = 1.0 - static_cast<double>(s.flops_executed) / full;
    s.flops_saved_net = 1.0 - static_cast<double>(s.flops_executed + s.flops_overhead) / full;
  }
  std::vector<RequestAccuracy> acc;
  for (const RequestRecord& q : r.requests) acc.push_back(q.accuracy);
  s.accuracy = summarize_accuracy(acc, n_boot, seed);
  s.t_full_s = static_cast<double>(r.t_full_ns) * 1e-9;
  s.t_skip_s = static_cast<double>(r.t_skip_ns) * 1e-9;
  s.t_lookup_s = static_cast<double>(r.t_lookup_ns) * 1e-9;
  s.speedup = s.t_skip_s > 0 ? s.t_full_s / s.t_skip_s : 0.0;
  return s;
}

report::Table summary_table(const std::vector<PolicySummary>& rows) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> n_req, n_tok, f_full, f_exec, f_over, lookups, hits, ins, evi, size, cap, kdim, vbytes;
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
      .add("t_full_s", t_full).add("t_skip_s", t_skip).add("t_lookup_s", t_lookup).add("speedup", speed);
  return t;
}

report::Table per_layer_table(const std::vector<PolicyResult>& results) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> layer, run, skip, mlp, prop, f_full, f_exec;
  for (const PolicyResult& r : results) {
    for (size_t l = 0; l < r.layers.n_block_run.size(); ++l) {
      const int li = static_cast<int>(l);
      policy.push_back(r.policy);
      index.push_back(r.index);
      layer.push_back(static_cast<int64_t>(l));
      run.push_back(r.layers.n_block_run[l]);
      skip.push_back(r.layers.n_block_skip[l]);
      mlp.push_back(r.layers.n_mlp_skip[l]);
      prop.push_back(r.layers.n_kv_propagated[l]);
      f_full.push_back(r.flops_full.by_layer(li, AttnConvention::causal));
      f_exec.push_back(r.flops_skip.by_layer(li, AttnConvention::causal));
    }
  }
  report::Table t;
  t.add("policy", policy).add("index", index).add("layer", layer).add("n_block_run", run)
      .add("n_block_skip", skip).add("n_mlp_skip", mlp).add("n_kv_propagated", prop)
      .add("flops_full", f_full).add("flops_executed", f_exec);
  return t;
}

report::Table requests_table(const std::vector<PolicyResult>& results) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> id, step, n_tok, bskip, mskip, npos, nmatch, ntgt, ngen, prefix, exact;
  std::vector<double> kl, nll_full, nll;
  for (const PolicyResult& r : results) {
    for (const RequestRecord& q : r.requests) {
      policy.push_back(r.policy), index.push_back(r.index), id.push_back(q.request_id), step.push_back(q.step);
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
      .add("nll_sum", nll).add("n_generated", ngen).add("gen_matched_prefix", prefix).add("gen_exact_match", exact);
  return t;
}

report::Table steps_table(const std::vector<PolicyResult>& results) {
  std::vector<std::string> policy, index;
  std::vector<int64_t> step, n_req, n_tok, f_full, f_exec, f_over, t_full, t_skip, t_lookup;
  for (const PolicyResult& r : results) {
    for (const StepRecord& s : r.steps) {
      policy.push_back(r.policy), index.push_back(r.index), step.push_back(s.step), n_req.push_back(s.n_requests);
      n_tok.push_back(s.n_tokens), f_full.push_back(s.flops_full), f_exec.push_back(s.flops_executed);
      f_over.push_back(s.flops_overhead), t_full.push_back(s.t_full_ns), t_skip.push_back(s.t_skip_ns);
      t_lookup.push_back(s.t_lookup_ns);
    }
  }
  report::Table t;
  t.add("policy", policy).add("index", index).add("step", step).add("n_requests", n_req).add("n_tokens", n_tok)
      .add("flops_full", f_full).add("flops_executed", f_exec).add("flops_overhead", f_over)
      .add("t_full_ns", t_full).add("t_skip_ns", t_skip).add("t_lookup_ns", t_lookup);
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
