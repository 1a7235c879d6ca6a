#include "engine/record_fields.h"

#include "core/error.h"
#include "index/index_benchmark.h"

namespace semskip {

using report::FieldTable;

namespace {

// Adds `name`, `name_lo`, `name_hi` of a statistic with its 95% bootstrap interval.
void add_interval(FieldTable<PolicySummary>& t, const std::string& name, const std::string& unit,
                  const std::string& description, Interval AccuracySummary::*stat) {
  t.member(name, unit, description, &PolicySummary::accuracy, stat, &Interval::value);
  t.member(name + "_lo", unit, "`" + name + "`: lower end of its 95% bootstrap interval over requests",
           &PolicySummary::accuracy, stat, &Interval::lo);
  t.member(name + "_hi", unit, "`" + name + "`: upper end of its 95% bootstrap interval over requests",
           &PolicySummary::accuracy, stat, &Interval::hi);
}

FieldTable<GatheredResult> make_configuration() {
  FieldTable<GatheredResult> t;
  t.member("policy", "text", "the skip policy's descriptor", &GatheredResult::policy);
  t.member("index", "text", "the index backend's descriptor (`\"\"` for a policy without a cache)",
           &GatheredResult::index);
  return t;
}

FieldTable<PolicySummary> make_summary() {
  using S = PolicySummary;
  FieldTable<S> t;
  t.member("policy", "text", "the skip policy's descriptor", &S::policy);
  t.member("index", "text", "the index backend's descriptor (`\"\"` for a policy without a cache)", &S::index);
  t.member("n_requests", "requests", "requests evaluated, all ranks", &S::n_requests);
  t.member("n_tokens", "tokens", "tokens processed (prompt and generated), all ranks", &S::n_tokens);
  t.member("hit_rate", "fraction", "`cache_hits / cache_lookups` (0 without a cache)", &S::hit_rate);
  t.member("skip_rate", "fraction", "(token, layer) blocks skipped / (run + skipped)", &S::skip_rate);
  t.member("flops_full", "FLOPs", "FLOPs of the full model on the same steps", &S::flops_full);
  t.member("flops_executed", "FLOPs", "FLOPs of the model's own operations that ran", &S::flops_executed);
  t.member("flops_overhead", "FLOPs", "key projection, index lookup, KV propagation, index insertion, training and value correction",
           &S::flops_overhead);
  t.member("flops_saved_gross", "fraction", "`1 − flops_executed / flops_full`", &S::flops_saved_gross);
  t.member("flops_saved_net", "fraction", "`1 − (flops_executed + flops_overhead) / flops_full`",
           &S::flops_saved_net);
  add_interval(t, "top1_agreement", "fraction", "fraction of positions where the argmax agrees with the full model",
               &AccuracySummary::top1_agreement);
  add_interval(t, "kl", "nats", "mean KL(full ‖ skip) per position", &AccuracySummary::kl);
  t.member("ppl_full", "perplexity", "perplexity of the full model on the prompts", &S::accuracy,
           &AccuracySummary::ppl_full, &Interval::value);
  add_interval(t, "ppl", "perplexity", "perplexity with skipping", &AccuracySummary::ppl_skip);
  add_interval(t, "gen_exact_match", "fraction",
               "fraction of requests whose greedy continuation equals the full model's (0 when nothing is "
               "generated)",
               &AccuracySummary::gen_exact_match);
  add_interval(t, "gen_matched_prefix", "tokens", "mean tokens of the continuation shared with the full model's",
               &AccuracySummary::gen_matched_prefix);
  t.member("cache_lookups", "lookups", "cache lookups, all ranks", &S::cache, &CacheStats::lookups);
  t.member("cache_hits", "lookups", "applied hits, all ranks", &S::cache, &CacheStats::hits);
  t.member("cache_insertions", "entries",
           "insertions into the job's cache: summed over ranks for `local` and `sharded`, one replica's for "
           "`replicated`",
           &S::cache, &CacheStats::insertions);
  t.member("cache_evictions", "entries", "evictions from the job's cache, the same way", &S::cache,
           &CacheStats::evictions);
  t.member("cache_size", "entries", "entries the job's cache holds at the end, the same way", &S::cache,
           &CacheStats::size);
  t.member("cache_capacity", "entries", "capacity of the job's cache, the same way", &S::cache,
           &CacheStats::capacity);
  t.member("cache_key_dim", "elements", "key width after projection", &S::cache, &CacheStats::key_dim);
  t.member("cache_value_bytes", "bytes", "bytes of stored values, the same way", &S::cache, &CacheStats::value_bytes);
  t.member("t_full_s", "s", "in the full model's runs, the slowest rank's", &S::t_full_s);
  t.member("t_skip_s", "s", "in the policy's runs, the slowest rank's", &S::t_skip_s);
  t.member("t_lookup_s", "s",
           "in the policy's lookups (key projection and search, collectives excluded), the slowest rank's",
           &S::t_lookup_s);
  t.member("speedup", "ratio", "`t_full_s / t_skip_s`", &S::speedup);
  t.member("n_ranks", "ranks", "ranks that evaluated", &S::n_ranks);
  t.member("cache_vetoed", "lookups",
           "matches that reached the threshold but ran because the sync rule refused the skip, all ranks",
           &S::cache, &CacheStats::vetoed);
  t.member("t_comm_s", "s", "inside collectives during the policy's runs, the slowest rank's", &S::t_comm_s);
  t.member("t_full_s_mean", "s", "`t_full_s`, mean over ranks", &S::t_full_s_mean);
  t.member("t_skip_s_mean", "s", "`t_skip_s`, mean over ranks", &S::t_skip_s_mean);
  t.member("t_lookup_s_mean", "s", "`t_lookup_s`, mean over ranks", &S::t_lookup_s_mean);
  t.member("t_comm_s_mean", "s", "`t_comm_s`, mean over ranks", &S::t_comm_s_mean);
  t.member("tokens_per_s", "tokens/s", "`n_tokens / t_skip_s`: the job's throughput with skipping", &S::tokens_per_s);
  t.member("comm_sent_bytes", "bytes", "bytes sent to other ranks during the policy's runs, all ranks",
           &S::comm_sent_bytes);
  t.member("flops_insert", "FLOPs", "index insertion of admitted cache entries (part of `flops_overhead`)",
           &S::flops_insert);
  t.member("flops_train", "FLOPs",
           "one-off fitting: index training, PCA key projection, value correction (part of `flops_overhead`)",
           &S::flops_train);
  t.member("flops_correction", "FLOPs",
           "low-rank value correction of cache hits and inserted values, `corr=` (part of `flops_overhead`)",
           &S::flops_correction);
  t.member("bootstrap_unit", "text",
           "what the intervals resample: `document` (text workloads), `conversation` (chat sets) or `request`",
           &S::bootstrap_unit);
  t.member("n_bootstrap_units", "units", "units the intervals resample (every request of a drawn unit is taken)",
           &S::n_units);
  for (const auto& [name, member] : {std::pair{"hit_rate", &S::hit_rate_ci}, std::pair{"skip_rate", &S::skip_rate_ci},
                                     std::pair{"flops_saved_net", &S::flops_saved_net_ci}}) {
    const std::string n(name);
    t.member(n + "_lo", "fraction", "`" + n + "`: lower end of its 95% bootstrap interval over `bootstrap_unit`s",
             member, &Interval::lo);
    t.member(n + "_hi", "fraction", "`" + n + "`: upper end of its 95% bootstrap interval over `bootstrap_unit`s",
             member, &Interval::hi);
  }
  return t;
}

FieldTable<LayerRecord> make_layer() {
  using L = LayerRecord;
  FieldTable<L> t;
  t.member("layer", "index", "decoder layer", &L::layer);
  t.member("n_block_run", "tokens", "tokens that ran the block", &L::n_block_run);
  t.member("n_block_skip", "tokens", "tokens that skipped the whole block", &L::n_block_skip);
  t.member("n_mlp_skip", "tokens", "tokens that ran attention but not the MLP / MoE", &L::n_mlp_skip);
  t.member("n_kv_propagated", "tokens", "skipped tokens whose K/V were computed (kv=propagate)", &L::n_kv_propagated);
  t.member("flops_full", "FLOPs", "FLOPs of the layer, full model", &L::flops_full);
  t.member("flops_executed", "FLOPs",
           "FLOPs of the layer's own operations that ran, as `flops_executed` of `/summary`: summed over layers it "
           "is that figure less the operations outside the decoder layers (lm_head, rotary), which are "
           "`/summary` `flops_full` less the sum of this table's",
           &L::flops_executed);
  t.member("flops_overhead", "FLOPs",
           "the policy's overheads charged under the layer (those of a cache policy at its probe layer); summed "
           "over layers, `/summary` `flops_overhead`",
           &L::flops_overhead);
  return t;
}

FieldTable<RankRecord> make_rank() {
  using R = RankRecord;
  FieldTable<R> t;
  t.member("rank", "rank", "the MPI rank", &R::rank);
  t.member("host", "text", "its host", &R::host);
  t.member("n_requests", "requests", "requests of this rank's shard", &R::n_requests);
  t.member("n_tokens", "tokens", "tokens of this rank's shard (prompt and generated)", &R::n_tokens);
  t.member("n_steps", "steps", "micro-batch steps in which this rank had requests", &R::n_steps);
  t.member("flops_full", "FLOPs",
           "FLOPs of the full model computed on this rank (with expert parallelism, expert FLOPs count where the "
           "expert ran)",
           &R::flops_full);
  t.member("flops_executed", "FLOPs", "FLOPs of the model's own operations that ran on this rank", &R::flops_executed);
  t.member("flops_overhead", "FLOPs", "key projection, index lookup, KV propagation, index insertion, training and value correction on this rank",
           &R::flops_overhead);
  t.member("t_full_ns", "ns", "in the full model's runs", &R::t_full_ns);
  t.member("t_skip_ns", "ns", "in the policy's runs", &R::t_skip_ns);
  t.member("t_lookup_ns", "ns", "in the policy's lookups", &R::t_lookup_ns);
  t.member("t_comm_ns", "ns", "inside collectives during the policy's runs (part of `t_skip_ns`)", &R::t_comm_ns);
  t.add_int("t_compute_ns", "ns", "`t_skip_ns − t_lookup_ns − t_comm_ns`",
            [](const R& k) { return k.t_compute_ns(); });
  t.member("t_full_comm_ns", "ns", "inside collectives during the full model's runs (part of `t_full_ns`)",
           &R::t_full_comm_ns);
  t.member("t_calib_ns", "ns", "fitting the policy to the calibration set", &R::t_calib_ns);
  t.add_real("tokens_per_s", "tokens/s", "`n_tokens / t_skip` of this rank", [](const R& k) {
    return k.t_skip_ns > 0 ? static_cast<double>(k.n_tokens) * 1e9 / static_cast<double>(k.t_skip_ns) : 0.0;
  });
  t.member("cache_lookups", "lookups", "this rank's lookups", &R::cache, &CacheStats::lookups);
  t.member("cache_hits", "lookups", "this rank's applied hits", &R::cache, &CacheStats::hits);
  t.member("cache_vetoed", "lookups", "this rank's matches the sync rule refused", &R::cache, &CacheStats::vetoed);
  const std::string stores = " of the entries this rank stores (its local cache, its replica, its shard)";
  t.member("cache_insertions", "entries", "insertions" + stores, &R::cache, &CacheStats::insertions);
  t.member("cache_evictions", "entries", "evictions" + stores, &R::cache, &CacheStats::evictions);
  t.member("cache_rejected", "entries", "misses not admitted" + stores, &R::cache, &CacheStats::rejected);
  t.member("cache_size", "entries", "entries held at the end" + stores, &R::cache, &CacheStats::size);
  t.member("cache_capacity", "entries", "capacity" + stores, &R::cache, &CacheStats::capacity);
  t.member("cache_key_dim", "elements", "key width after projection", &R::cache, &CacheStats::key_dim).packed_only();
  t.member("cache_value_bytes", "bytes", "bytes of stored values" + stores, &R::cache, &CacheStats::value_bytes);
  for (size_t i = 0; i < kNumCollectiveKinds; ++i) {
    const std::string kind = collective_name(static_cast<CollectiveKind>(i));
    const std::string of = " of the policy's runs (as `comm/comm_stats.h` counts them)";
    auto at = [i](const R& k) -> const CollectiveCounters& { return k.comm.by_kind[i]; };
    auto at_mut = [i](R& k) -> CollectiveCounters& { return k.comm.by_kind[i]; };
    t.add_int("comm_" + kind + "_n_calls", "calls", "`" + kind + "` calls" + of,
              [at](const R& k) { return at(k).n_calls; }, [at_mut](R& k, int64_t v) { at_mut(k).n_calls = v; });
    t.add_int("comm_" + kind + "_sent_bytes", "bytes", "`" + kind + "` bytes to other ranks" + of,
              [at](const R& k) { return at(k).bytes_sent; }, [at_mut](R& k, int64_t v) { at_mut(k).bytes_sent = v; });
    t.add_int("comm_" + kind + "_recv_bytes", "bytes", "`" + kind + "` bytes from other ranks" + of,
              [at](const R& k) { return at(k).bytes_recv; }, [at_mut](R& k, int64_t v) { at_mut(k).bytes_recv = v; });
    t.add_int("comm_" + kind + "_t_ns", "ns", "time in `" + kind + "`" + of,
              [at](const R& k) { return at(k).t_ns; }, [at_mut](R& k, int64_t v) { at_mut(k).t_ns = v; });
  }
  t.member("ep_n_calls", "calls", "MoE layer executions through expert parallelism", &R::ep, &EpStats::n_calls);
  t.member("ep_n_pairs_routed", "pairs", "(token, expert) pairs of this rank's tokens", &R::ep,
           &EpStats::n_pairs_routed);
  t.member("ep_n_pairs_sent", "pairs", "of them, sent to other ranks", &R::ep, &EpStats::n_pairs_sent);
  t.member("ep_n_pairs_run", "pairs", "pairs this rank's experts computed", &R::ep, &EpStats::n_pairs_run);
  t.member("ep_n_pairs_recv", "pairs", "of them, from other ranks", &R::ep, &EpStats::n_pairs_recv);
  t.member("ep_t_alltoall_ns", "ns", "time in the expert all-to-alls", &R::ep, &EpStats::t_alltoall_ns);
  t.member("ep_t_experts_ns", "ns", "time in the experts", &R::ep, &EpStats::t_experts_ns);
  t.member("flops_insert", "FLOPs", "index insertion on this rank (part of `flops_overhead`)", &R::flops_insert);
  t.member("flops_train", "FLOPs", "one-off training on this rank (part of `flops_overhead`)", &R::flops_train);
  t.member("flops_correction", "FLOPs", "value correction on this rank (part of `flops_overhead`)",
           &R::flops_correction);
  t.member("weight_bytes", "bytes",
           "model weights this rank holds: numel × element size summed over the parameters it loaded (with "
           "`--ep` only its own routed experts; the same in every configuration's row)",
           &R::weight_bytes);
  t.member("peak_rss_bytes", "bytes",
           "this rank's peak resident memory when the report was gathered: `VmHWM` of `/proc/self/status` "
           "(Linux; 0 where it cannot be read), the whole process (weights, caches, buffers, libraries)",
           &R::peak_rss_bytes);
  return t;
}

FieldTable<RequestRecord> make_request() {
  using Q = RequestRecord;
  using A = RequestAccuracy;
  FieldTable<Q> t;
  t.member("request_id", "id", "position of the request in the workload stream (calibration requests included)",
           &Q::request_id);
  t.member("step", "step", "the micro-batch step it ran in", &Q::step);
  t.member("n_tokens", "tokens", "prompt tokens", &Q::n_tokens);
  t.member("n_block_skips", "blocks", "(token, layer) block skips, prompt and generated", &Q::n_block_skips);
  t.member("n_mlp_skips", "blocks", "(token, layer) MLP skips, prompt and generated", &Q::n_mlp_skips);
  t.member("n_positions", "positions", "positions compared", &Q::accuracy, &A::n_positions);
  t.member("n_top1_match", "positions", "of them, argmax agreeing with the full model", &Q::accuracy, &A::n_top1_match);
  t.member("kl_sum", "nats", "Σ KL(full ‖ skip) over its positions", &Q::accuracy, &A::kl_sum);
  t.member("n_targets", "positions", "positions with a next-token target", &Q::accuracy, &A::n_targets);
  t.member("nll_full_sum", "nats", "Σ −log p of the target, full model", &Q::accuracy, &A::nll_full_sum);
  t.member("nll_sum", "nats", "Σ −log p of the target, with skipping", &Q::accuracy, &A::nll_skip_sum);
  t.member("n_generated", "tokens", "greedy tokens compared", &Q::accuracy, &A::n_generated);
  t.member("gen_matched_prefix", "tokens", "of them, the prefix shared with the full model's", &Q::accuracy,
           &A::matched_prefix);
  t.member("gen_exact_match", "flag", "1 if the continuation equals the full model's", &Q::accuracy, &A::exact_match);
  t.member("rank", "rank", "the rank that ran it", &Q::rank);
  return t;
}

FieldTable<StepRecord> make_step() {
  using T = StepRecord;
  FieldTable<T> t;
  t.member("step", "step", "micro-batch step (lockstep over ranks)", &T::step);
  t.member("n_requests", "requests", "sequences of the step on this rank", &T::n_requests);
  t.member("n_tokens", "tokens", "tokens processed (prompt and generated)", &T::n_tokens);
  t.member("flops_full", "FLOPs", "as in `/per_rank`, for the step", &T::flops_full);
  t.member("flops_executed", "FLOPs", "as in `/per_rank`, for the step", &T::flops_executed);
  t.member("flops_overhead", "FLOPs", "as in `/per_rank`, for the step", &T::flops_overhead);
  t.member("t_full_ns", "ns", "the step's full run", &T::t_full_ns);
  t.member("t_skip_ns", "ns", "the step's policy run", &T::t_skip_ns);
  t.member("t_lookup_ns", "ns", "the step's lookups", &T::t_lookup_ns);
  t.member("rank", "rank", "the rank", &T::rank);
  t.member("t_comm_ns", "ns", "in collectives of the policy's run of the step", &T::t_comm_ns);
  t.member("comm_sent_bytes", "bytes", "to other ranks in the policy's run of the step", &T::comm_sent_bytes);
  t.member("comm_recv_bytes", "bytes", "from other ranks in the policy's run of the step", &T::comm_recv_bytes);
  t.member("t_full_comm_ns", "ns", "in collectives of the full model's run of the step", &T::t_full_comm_ns);
  t.member("cache_lookups", "lookups", "this rank's lookups of the step", &T::cache_lookups);
  t.member("cache_hits", "lookups", "of them, applied hits", &T::cache_hits);
  t.member("cache_vetoed", "lookups", "of them, matches the sync rule refused", &T::cache_vetoed);
  t.member("cache_size", "entries",
           "entries this rank's cache holds after the step (0 without a cache): its size over time", &T::cache_size);
  return t;
}

// The Markdown of a table whose rows are a configuration's columns followed by a record's.
template <typename Record>
std::string keyed_markdown(const FieldTable<Record>& t) {
  std::vector<report::FieldInfo> infos = configuration_fields().infos();
  for (report::FieldInfo& f : t.infos()) infos.push_back(f);
  return report::markdown_table(infos);
}

}  // namespace

const FieldTable<GatheredResult>& configuration_fields() {
  static const FieldTable<GatheredResult> t = make_configuration();
  return t;
}
const FieldTable<PolicySummary>& summary_fields() {
  static const FieldTable<PolicySummary> t = make_summary();
  return t;
}
const FieldTable<LayerRecord>& layer_fields() {
  static const FieldTable<LayerRecord> t = make_layer();
  return t;
}
const FieldTable<RankRecord>& rank_fields() {
  static const FieldTable<RankRecord> t = make_rank();
  return t;
}
const FieldTable<RequestRecord>& request_fields() {
  static const FieldTable<RequestRecord> t = make_request();
  return t;
}
const FieldTable<StepRecord>& step_fields() {
  static const FieldTable<StepRecord> t = make_step();
  return t;
}

std::vector<std::pair<std::string, std::string>> schema_markdown_tables() {
  return {
      {"/index/bench", report::markdown_table(index_bench_fields().infos())},
      {"/index/bench_samples", report::markdown_table(index_bench_sample_fields().infos())},
      {"/summary", report::markdown_table(summary_fields().infos())},
      {"/per_layer", keyed_markdown(layer_fields())},
      {"/per_rank", keyed_markdown(rank_fields())},
      {"/requests", keyed_markdown(request_fields())},
      {"/steps", keyed_markdown(step_fields())},
  };
}

std::string render_schema_doc(const std::string& doc) {
  std::string out = doc;
  for (const auto& [path, markdown] : schema_markdown_tables()) {
    const std::string begin = "<!-- fields " + path + " begin -->\n", end = "<!-- fields " + path + " end -->";
    const size_t b = out.find(begin);
    SEMSKIP_THROW_IF_NOT_MSG(b != std::string::npos, "reports/SCHEMA.md: no marker '{}'", begin.substr(0, begin.size() - 1));
    const size_t e = out.find(end, b);
    SEMSKIP_THROW_IF_NOT_MSG(e != std::string::npos, "reports/SCHEMA.md: no marker '{}' after its begin", end);
    out.replace(b + begin.size(), e - b - begin.size(), markdown);
  }
  return out;
}

}  // namespace semskip
