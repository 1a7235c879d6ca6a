// Tables of a serve-bench report (see serve_report.h).
#include "reports/serve_report.h"

#include <fmt/format.h>

#include "core/error.h"
#include "reports/report_writer.h"

namespace semskip::report {

Table serve_requests_table(const std::vector<ServePolicyRecords>& runs) {
  std::vector<std::string> policy, finish_reason, error;
  std::vector<int64_t> request_id, rank, n_tokens_prompt, n_tokens_output, n_preemptions, n_prompt_skips,
      n_output_skips, exact, prefix;
  std::vector<double> arrival, scheduled, first_token, finish, ttft, e2el;
  for (const ServePolicyRecords& run : runs) {
    const size_t n = run.requests.size();
    SEMSKIP_THROW_IF_NOT_MSG(run.request_rank.size() == n && run.exact_match.size() == n &&
                                 run.matched_prefix.size() == n,
                             "serve report: policy {}: {} requests with {} ranks, {} exact-match and {} prefix values",
                             run.policy, n, run.request_rank.size(), run.exact_match.size(), run.matched_prefix.size());
    for (size_t i = 0; i < n; ++i) {
      const serve::RequestRecord& r = run.requests[i];
      policy.push_back(run.policy);
      request_id.push_back(r.id);
      rank.push_back(run.request_rank[i]);
      n_tokens_prompt.push_back(r.n_prompt_tokens);
      n_tokens_output.push_back(static_cast<int64_t>(r.output_tokens.size()));
      arrival.push_back(r.arrival_s);
      scheduled.push_back(r.scheduled_s);
      first_token.push_back(r.first_token_s);
      finish.push_back(r.finish_s);
      const bool ok = r.ok() && r.first_token_s >= 0.0;
      ttft.push_back(ok ? r.first_token_s - r.arrival_s : -1.0);
      e2el.push_back(ok ? r.finish_s - r.arrival_s : -1.0);
      n_preemptions.push_back(r.n_preemptions);
      n_prompt_skips.push_back(r.n_prompt_tokens_skipped);
      n_output_skips.push_back(r.n_output_tokens_skipped);
      finish_reason.push_back(r.finish_reason);
      error.push_back(r.error);
      exact.push_back(run.exact_match[i]);
      prefix.push_back(run.matched_prefix[i]);
    }
  }
  Table t;
  t.add("policy", std::move(policy));
  t.add("request_id", std::move(request_id));
  t.add("rank", std::move(rank));
  t.add("n_tokens_prompt", std::move(n_tokens_prompt));
  t.add("n_tokens_output", std::move(n_tokens_output));
  t.add("arrival_s", std::move(arrival));
  t.add("scheduled_s", std::move(scheduled));
  t.add("first_token_s", std::move(first_token));
  t.add("finish_s", std::move(finish));
  t.add("ttft_s", std::move(ttft));
  t.add("e2el_s", std::move(e2el));
  t.add("n_preemptions", std::move(n_preemptions));
  t.add("n_prompt_block_skips", std::move(n_prompt_skips));
  t.add("n_output_block_skips", std::move(n_output_skips));
  t.add("finish_reason", std::move(finish_reason));
  t.add("error", std::move(error));
  t.add("gen_exact_match", std::move(exact));
  t.add("gen_matched_prefix", std::move(prefix));
  return t;
}

Table serve_steps_table(const std::vector<ServePolicyRecords>& runs, int64_t n_layer) {
  SEMSKIP_THROW_IF_NOT_MSG(n_layer >= 0, "serve report: {} layers", n_layer);
  std::vector<std::string> policy;
  std::vector<int64_t> rank, step, n_seqs, n_prefill, n_decode, n_waiting, n_preempted, n_blocks, n_skip_total,
      n_mlp_total, kv_gathered, n_forwards, fixed_shape;
  std::vector<double> start, duration, lookup, t_sched, t_prep, t_fwd, t_fin;
  std::vector<std::vector<int64_t>> skip(static_cast<size_t>(n_layer)), mlp(static_cast<size_t>(n_layer));
  for (const ServePolicyRecords& run : runs) {
    SEMSKIP_THROW_IF_NOT_MSG(run.step_rank.size() == run.steps.size(),
                             "serve report: policy {}: {} steps with {} ranks", run.policy, run.steps.size(),
                             run.step_rank.size());
    for (size_t i = 0; i < run.steps.size(); ++i) {
      const serve::StepRecord& s = run.steps[i];
      for (const auto* per_layer : {&s.rows_skipping, &s.rows_mlp_skipping}) {
        SEMSKIP_THROW_IF_NOT_MSG(per_layer->empty() || static_cast<int64_t>(per_layer->size()) == n_layer,
                                 "serve report: policy {}, step {}: {} per-layer counts for {} layers", run.policy,
                                 s.index, per_layer->size(), n_layer);
      }
      policy.push_back(run.policy);
      rank.push_back(run.step_rank[i]);
      step.push_back(s.index);
      start.push_back(s.start_s);
      duration.push_back(s.duration_s);
      n_seqs.push_back(s.n_seqs);
      n_prefill.push_back(s.n_prefill_tokens);
      n_decode.push_back(s.n_decode_tokens);
      n_waiting.push_back(s.n_waiting);
      n_preempted.push_back(s.n_preempted);
      n_blocks.push_back(s.n_kv_blocks_used);
      kv_gathered.push_back(s.kv_gathered ? 1 : 0);
      n_forwards.push_back(s.n_forwards);
      fixed_shape.push_back(s.fixed_shape ? 1 : 0);
      lookup.push_back(s.t_lookup_s);
      t_sched.push_back(s.t_schedule_s);
      t_prep.push_back(s.t_prepare_s);
      t_fwd.push_back(s.t_forward_s);
      t_fin.push_back(s.t_finish_s);
      int64_t total_skip = 0, total_mlp = 0;
      for (int64_t l = 0; l < n_layer; ++l) {
        const int64_t a = s.rows_skipping.empty() ? 0 : s.rows_skipping[l];
        const int64_t b = s.rows_mlp_skipping.empty() ? 0 : s.rows_mlp_skipping[l];
        skip[l].push_back(a);
        mlp[l].push_back(b);
        total_skip += a;
        total_mlp += b;
      }
      n_skip_total.push_back(total_skip);
      n_mlp_total.push_back(total_mlp);
    }
  }
  Table t;
  t.add("policy", std::move(policy));
  t.add("rank", std::move(rank));
  t.add("step", std::move(step));
  t.add("start_s", std::move(start));
  t.add("duration_s", std::move(duration));
  t.add("n_seqs", std::move(n_seqs));
  t.add("n_prefill_tokens", std::move(n_prefill));
  t.add("n_decode_tokens", std::move(n_decode));
  t.add("n_waiting", std::move(n_waiting));
  t.add("n_preempted", std::move(n_preempted));
  t.add("n_kv_blocks_used", std::move(n_blocks));
  t.add("n_forwards", std::move(n_forwards));
  t.add("kv_gathered", std::move(kv_gathered));
  t.add("fixed_shape", std::move(fixed_shape));
  t.add("t_lookup_s", std::move(lookup));
  t.add("t_schedule_s", std::move(t_sched));
  t.add("t_prepare_s", std::move(t_prep));
  t.add("t_forward_s", std::move(t_fwd));
  t.add("t_finish_s", std::move(t_fin));
  t.add("n_block_skips", std::move(n_skip_total));
  t.add("n_mlp_skips", std::move(n_mlp_total));
  for (int64_t l = 0; l < n_layer; ++l) t.add(fmt::format("n_block_skips_l{}", l), std::move(skip[l]));
  for (int64_t l = 0; l < n_layer; ++l) t.add(fmt::format("n_mlp_skips_l{}", l), std::move(mlp[l]));
  return t;
}

void write_serve_tables(ReportWriter& writer, const std::vector<ServePolicyRecords>& runs, int64_t n_layer) {
  writer.write_table("/requests", serve_requests_table(runs));
  writer.write_table("/steps", serve_steps_table(runs, n_layer));
}

}  // namespace semskip::report
