#include "engine/evaluator.h"

#include <algorithm>

#include "core/error.h"
#include "comm/communicator.h"
#include "engine/step_batch.h"
#include "metrics/finite_check.h"
#include "metrics/timing.h"
#include "model/generation.h"
#include "model/transformer.h"
#include "skip/baseline_policies.h"

namespace semskip {

namespace {

// Block and MLP skips per row of a step's decisions.
void add_row_skips(const StepContext& ctx, std::vector<int64_t>& block, std::vector<int64_t>& mlp) {
  for (int64_t l = 0; l < ctx.n_layers(); ++l) {
    const at::Tensor& sb = ctx.skip_block_or_null(l);
    if (sb.defined()) {
      at::Tensor s = sb.logical_and(ctx.valid()).sum(1).to(at::kCPU);
      for (int64_t b = 0; b < ctx.batch(); ++b) block[static_cast<size_t>(b)] += s[b].item<int64_t>();
    }
    const at::Tensor& sm = ctx.skip_mlp_or_null(l);
    if (sm.defined()) {
      at::Tensor s = sm.logical_and(ctx.valid()).sum(1).to(at::kCPU);
      for (int64_t b = 0; b < ctx.batch(); ++b) mlp[static_cast<size_t>(b)] += s[b].item<int64_t>();
    }
  }
}

// The non-finite check of one run of a step (full model or policy), naming its requests.
StepFiniteGuard finite_guard(const Transformer& model, const StepBatch& sb, int64_t step, const std::string& run) {
  std::vector<std::string> names;
  for (const Request* r : sb.requests) names.push_back(fmt::format("{} ({})", r->id, r->where()));
  return StepFiniteGuard(model.config().n_layers, model.device(), run, step, std::move(names));
}

// The collectives that keep the ranks of a distributed evaluation in step; nothing in one
// process.
class Lockstep {
 public:
  explicit Lockstep(Communicator* world) : world_(world && world->size() > 1 ? world : nullptr) {}

  enum class Next { run, done, stop };
  // Whether any rank has rows for the next step and whether any rank asks to stop (`stop`
  // wins over `run`; `done` when no rank has rows left); `offset` receives this rank's first
  // row in the step's union micro-batch (the rows of all ranks in rank order).
  Next next_step(int64_t my_rows, bool my_stop, int64_t& offset) const {
    offset = 0;
    int64_t total = my_rows;
    bool stop = my_stop;
    if (world_) {
      // int64 [n, 2]: rows, stop wish; one allgather decides both, so every rank stops alike.
      const at::Tensor all = world_->allgather(at::tensor({my_rows, static_cast<int64_t>(my_stop)}, at::kLong));
      total = 0;
      for (int r = 0; r < world_->size(); ++r) {
        const int64_t c = all[r][0].item<int64_t>();
        if (r < world_->rank()) offset += c;
        total += c;
        stop = stop || all[r][1].item<int64_t>() != 0;
      }
    }
    if (total == 0) return Next::done;
    return stop ? Next::stop : Next::run;
  }

  // Whether any rank still has a sequence to decode.
  bool any(bool mine) const {
    if (!world_) return mine;
    const at::Tensor v = at::tensor({static_cast<int64_t>(mine ? 1 : 0)}, at::kLong);
    return world_->allreduce(v, ReduceOp::max).item<int64_t>() > 0;
  }

 private:
  Communicator* world_;
};

}  // namespace

Evaluator::Evaluator(const Transformer& model, EvalOptions options, EvalDist dist)
    : model_(model), opts_(options), dist_(std::move(dist)), engine_(model, dist_.ep, options.row_exec), local_engine_(model) {
  SEMSKIP_THROW_IF_NOT_MSG(opts_.batch >= 1, "batch must be ≥ 1, got {}", opts_.batch);
  SEMSKIP_THROW_IF_NOT_MSG(opts_.max_new_tokens >= 0, "max-new-tokens must be ≥ 0");
}

namespace {

// The full model (skips nothing) that keeps each layer's MLP output of the step.
class MlpOutRecorder final : public SkipPolicy {
 public:
  explicit MlpOutRecorder(int64_t n_layers) : out_(static_cast<size_t>(n_layers)) {}
  std::string describe() const override { return "none"; }
  bool wants_mlp_out(int64_t layer) const override { (void)layer; return true; }
  void after_mlp(int64_t layer, const at::Tensor& mlp_out, StepContext& ctx) override {
    (void)ctx;
    out_[static_cast<size_t>(layer)] = mlp_out.clone();
  }
  // [L, B, S, d] of the last step.
  at::Tensor stacked() const { return at::stack(out_); }

 private:
  std::vector<at::Tensor> out_;
};

}  // namespace

CalibrationSet Evaluator::calibrate(const std::vector<Request>& requests, bool mlp_out) const {
  CalibrationSet calib;
  if (requests.empty()) return calib;
  const ModelConfig& cfg = model_.config();
  NonePolicy none(Descriptor::parse("none"));
  MlpOutRecorder recorder(cfg.n_layers);
  SkipPolicy& policy = mlp_out ? static_cast<SkipPolicy&>(recorder) : none;
  std::vector<at::Tensor> parts, mlp_parts;
  for (size_t begin = 0; begin < requests.size(); begin += static_cast<size_t>(opts_.batch)) {
    const size_t end = std::min(requests.size(), begin + static_cast<size_t>(opts_.batch));
    StepBatch sb = make_batch(requests, begin, end, model_.device());
    StepContext ctx(cfg.n_layers, cfg.hidden_size, sb.valid, sb.rows, true);
    StepFiniteGuard finite = finite_guard(model_, sb, static_cast<int64_t>(begin) / opts_.batch,
                                          "the full model's calibration run");
    ctx.finite = &finite;
    const SkipEngine& engine = dist_.ep ? engine_ : local_engine_;  // sharded experts: through the group
    SkipKvCache kv = engine.make_cache(sb.ids.size(0), sb.ids.size(1));
    at::Tensor states;
    engine.step(sb.ids, ctx, kv, policy, nullptr, nullptr, &states);  // [L+1, B, S, d]
    at::Tensor flat_valid = sb.valid.reshape({-1}).nonzero().squeeze(1);
    parts.push_back(states.flatten(1, 2).index_select(1, flat_valid).to(at::kCPU, at::kFloat));
    if (mlp_out)
      mlp_parts.push_back(recorder.stacked().flatten(1, 2).index_select(1, flat_valid).to(at::kCPU, at::kFloat));
  }
  calib.states = at::cat(parts, 1);  // fp32 [L+1, N, d]
  if (mlp_out) calib.mlp_out = at::cat(mlp_parts, 1);  // fp32 [L, N, d]
  return calib;
}

namespace {

// Greedy continuation of a prefilled step: `next` holds each row's next token (argmax of
// the prefill's last position). Returns [B][n] tokens; rows stop at eos. In lockstep, every
// rank takes as many decode steps; one whose rows have all stopped decodes empty steps.
std::vector<std::vector<int64_t>> continue_greedy(const SkipEngine& engine, const Transformer& model,
                                                  at::Tensor next, const std::vector<int64_t>& rows,
                                                  int64_t union_offset, SkipKvCache& kv, SkipPolicy& policy,
                                                  const EvalOptions& o, const Lockstep& lockstep,
                                                  FlopCounter* flops, LayerCounts* counts,
                                                  std::vector<int64_t>& block, std::vector<int64_t>& mlp,
                                                  int64_t& t_lookup_ns, StepFiniteGuard* finite) {
  // The decode loop of generate_greedy (model/generation.h), stepping through the engine.
  const ModelConfig& cfg = model.config();
  GreedyLoop loop;
  loop.max_new_tokens = o.max_new_tokens;
  loop.eos_token_id = o.eos_token;
  loop.go_on = [&](bool mine) { return lockstep.any(mine); };
  loop.idle_step = [&] {
    // Nothing of ours to decode; the others' collectives still need this rank.
    const StepBatch idle = empty_batch(model.device());
    StepContext ctx(cfg.n_layers, cfg.hidden_size, idle.valid, {}, false);
    ctx.flops = flops;
    ctx.union_row_offset = union_offset;
    SkipKvCache kv_idle = engine.make_cache(0, 1);
    engine.step(idle.ids, ctx, kv_idle, policy, flops, counts);
    t_lookup_ns += ctx.t_lookup_ns;
  };
  loop.step = [&](const at::Tensor& tokens, const at::Tensor& live) {
    StepContext ctx(cfg.n_layers, cfg.hidden_size, live, rows, false);
    ctx.flops = flops;
    ctx.union_row_offset = union_offset;
    ctx.finite = finite;
    at::Tensor logits = engine.step(tokens, ctx, kv, policy, flops, counts);
    add_row_skips(ctx, block, mlp);
    t_lookup_ns += ctx.t_lookup_ns;
    return logits;
  };
  return decode_greedy(next.to(model.device()), loop);
}

}  // namespace

void check_policy_requirements(const SkipPolicy& policy, bool has_calibration, int64_t max_new_tokens) {
  SEMSKIP_THROW_IF_NOT_MSG(!policy.needs_calibration() || has_calibration,
                           "policy '{}' needs calibration requests (--calib-requests > 0)", policy.describe());
  // kv=exact: after a divergence the skipped run's tokens are not the full run's, and the full
  // model's K/V of them exist nowhere; a shadow full forward of the skipped run's own tokens
  // would be another protocol, so generation refuses it.
  SEMSKIP_THROW_IF_NOT_MSG(policy.kv_mode() != KvMode::exact || max_new_tokens == 0,
                           "policy '{}': kv=exact takes skipped tokens' K/V from the full model's run of the same "
                           "tokens (an optimistic reference) and runs in teacher-forced evaluation only "
                           "(max-new-tokens 0): generated tokens that diverge have no full-model K/V",
                           policy.describe());
  SEMSKIP_THROW_IF_NOT_MSG(!policy.needs_full_states() || max_new_tokens == 0,
                           "policy '{}' needs the full model's states and runs in teacher-forced evaluation only "
                           "(max-new-tokens 0)", policy.describe());
}

namespace {

// The full model's run of one micro-batch step: what every policy's run of the step is
// compared against.
struct FullStep {
  int64_t step_index = 0;
  int64_t union_offset = 0;
  StepBatch sb;
  FlopCounter flops;
  at::Tensor logits;  // fp32 [B, S, V] on the CPU
  at::Tensor states;  // [L+1, B, S, d] when a policy needs the full states
  std::vector<std::vector<int64_t>> gen;  // greedy continuations (max_new_tokens > 0)
  int64_t t_ns = 0;
  CommTotals comm;
};

// Runs one micro-batch step: the full model once (full()), then each policy on the same
// inputs (policy()), recording into the policy's result.
class StepRunner {
 public:
  StepRunner(const Transformer& model, const SkipEngine& engine, const EvalOptions& opts, const EvalDist& dist,
             const Lockstep& lockstep, int rank)
      : model_(model), engine_(engine), opts_(opts), dist_(dist), lockstep_(lockstep), rank_(rank) {}

  FullStep full(const std::vector<Request>& requests, size_t begin, size_t end, int64_t step_index,
                int64_t union_offset, bool need_states) const {
    const ModelConfig& cfg = model_.config();
    FullStep fs;
    fs.step_index = step_index;
    fs.union_offset = union_offset;
    fs.sb = end > begin ? make_batch(requests, begin, end, model_.device()) : empty_batch(model_.device());
    const int64_t B = fs.sb.ids.size(0), S = fs.sb.ids.size(1);
    std::vector<int64_t> unused_block(static_cast<size_t>(B), 0), unused_mlp(static_cast<size_t>(B), 0);
    int64_t unused_lookup = 0;
    NonePolicy none(Descriptor::parse("none"));
    const CommTotals comm0 = CommTotals::snapshot(dist_.counted);
    // The timing protocol: the device is idle when the clock starts; the host copy of the
    // logits at the end waits for the step's device work.
    synchronize(model_.device());
    const Stopwatch clock;
    StepContext ctx(cfg.n_layers, cfg.hidden_size, fs.sb.valid, fs.sb.rows, true);
    ctx.union_row_offset = union_offset;
    StepFiniteGuard finite = finite_guard(model_, fs.sb, step_index, "the full model");
    ctx.finite = &finite;
    SkipKvCache kv = engine_.make_cache(B, S + opts_.max_new_tokens);
    at::Tensor logits =
        engine_.step(fs.sb.ids, ctx, kv, none, &fs.flops, nullptr, need_states ? &fs.states : nullptr);
    if (opts_.max_new_tokens > 0)
      fs.gen = continue_greedy(engine_, model_, logits.select(1, S - 1).argmax(-1), fs.sb.rows, union_offset, kv,
                               none, opts_, lockstep_, &fs.flops, nullptr, unused_block, unused_mlp, unused_lookup,
                               &finite);
    fs.logits = logits.to(at::kCPU, at::kFloat);
    fs.t_ns = clock.nanoseconds();
    fs.comm = CommTotals::snapshot(dist_.counted) - comm0;
    return fs;
  }

  void policy(SkipPolicy& policy, const FullStep& fs, PolicyResult& res) const {
    const ModelConfig& cfg = model_.config();
    const int64_t L = cfg.n_layers;
    const StepBatch& sb = fs.sb;
    const int64_t B = sb.ids.size(0), S = sb.ids.size(1);
    FlopCounter f;
    LayerCounts counts(L);
    std::vector<int64_t> block(static_cast<size_t>(B), 0), mlp(static_cast<size_t>(B), 0);
    for (int64_t row : sb.rows) policy.begin_request(row);
    const CommTotals comm_before = CommTotals::snapshot(dist_.counted);
    const EpStats ep_before = dist_.ep ? dist_.ep->stats() : EpStats{};
    const CacheStats cache_before = policy.cache_stats();
    synchronize(model_.device());
    const Stopwatch clock;
    StepContext ctx(L, cfg.hidden_size, sb.valid, sb.rows, true);
    ctx.flops = &f;
    ctx.union_row_offset = fs.union_offset;
    if (policy.needs_full_states()) ctx.full_states = fs.states;
    StepFiniteGuard finite = finite_guard(model_, sb, fs.step_index, fmt::format("policy '{}'", policy.describe()));
    ctx.finite = &finite;
    SkipKvCache kv = engine_.make_cache(B, S + opts_.max_new_tokens);
    at::Tensor logits = engine_.step(sb.ids, ctx, kv, policy, &f, &counts);
    add_row_skips(ctx, block, mlp);
    int64_t t_lookup = ctx.t_lookup_ns;
    std::vector<std::vector<int64_t>> gen;
    if (opts_.max_new_tokens > 0)
      gen = continue_greedy(engine_, model_, logits.select(1, S - 1).argmax(-1), sb.rows, fs.union_offset, kv,
                            policy, opts_, lockstep_, &f, &counts, block, mlp, t_lookup, &finite);
    const at::Tensor ls = logits.to(at::kCPU, at::kFloat);
    const int64_t t_skip = clock.nanoseconds();
    const CommTotals comm = CommTotals::snapshot(dist_.counted) - comm_before;
    if (dist_.ep) add_ep_stats(res.ep, ep_stats_between(dist_.ep->stats(), ep_before));
    const CacheStats cache_after = policy.cache_stats();

    for (int64_t b = 0; b < B; ++b) {
      const Request& r = *sb.requests[static_cast<size_t>(b)];
      const int64_t n = r.n_tokens_prompt();
      at::Tensor targets = at::full({n}, -1, at::kLong);
      for (int64_t t = 0; t + 1 < n; ++t) targets[t] = static_cast<int64_t>(r.prompt_tokens[static_cast<size_t>(t + 1)]);
      RequestRecord rec;
      rec.request_id = r.id;
      rec.rank = rank_;
      rec.step = fs.step_index;
      rec.n_tokens = n;
      rec.n_block_skips = block[static_cast<size_t>(b)];
      rec.n_mlp_skips = mlp[static_cast<size_t>(b)];
      rec.accuracy = compare_logits(fs.logits[b].slice(0, S - n, S), ls[b].slice(0, S - n, S), targets);
      if (opts_.max_new_tokens > 0)
        compare_generations(fs.gen[static_cast<size_t>(b)], gen[static_cast<size_t>(b)], rec.accuracy);
      res.requests.push_back(rec);
    }
    StepRecord st;
    st.step = fs.step_index;
    st.rank = rank_;
    st.n_requests = B;
    st.n_tokens = counts.n_block_run[0] + counts.n_block_skip[0];
    st.flops_full = fs.flops.total_model(AttnConvention::causal);
    st.flops_executed = f.total_model(AttnConvention::causal);
    st.flops_overhead = f.total_overhead();
    st.t_full_ns = fs.t_ns;
    st.t_skip_ns = t_skip;
    st.t_lookup_ns = t_lookup;
    st.t_comm_ns = comm.total().t_ns;
    st.comm_sent_bytes = comm.total().bytes_sent;
    st.comm_recv_bytes = comm.total().bytes_recv;
    st.t_full_comm_ns = fs.comm.total().t_ns;
    st.cache_lookups = cache_after.lookups - cache_before.lookups;
    st.cache_hits = cache_after.hits - cache_before.hits;
    st.cache_vetoed = cache_after.vetoed - cache_before.vetoed;
    st.cache_size = cache_after.size;
    res.steps.push_back(st);
    res.flops_full.merge(fs.flops);
    res.flops_skip.merge(f);
    res.layers.merge(counts);
    res.t_full_ns += fs.t_ns;
    res.t_skip_ns += t_skip;
    res.t_lookup_ns += t_lookup;
    res.comm += comm;
    res.comm_full += fs.comm;
  }

 private:
  const Transformer& model_;
  const SkipEngine& engine_;
  const EvalOptions& opts_;
  const EvalDist& dist_;
  const Lockstep& lockstep_;
  int rank_;
};

}  // namespace

std::vector<PolicyResult> Evaluator::run(const std::vector<Request>& requests,
                                         std::vector<std::unique_ptr<SkipPolicy>>& policies,
                                         const CalibrationSet& calib) const {
  return run(requests, policies, calib, RunControl{}).results;
}

RunOutcome Evaluator::run(const std::vector<Request>& requests, std::vector<std::unique_ptr<SkipPolicy>>& policies,
                          const CalibrationSet& calib, const RunControl& control) const {
  SEMSKIP_THROW_IF_NOT_MSG(control.first_step >= 0, "resume: first step {} must be ≥ 0", control.first_step);
  SEMSKIP_THROW_IF_NOT_MSG(control.first_step == 0 || control.restored.size() == policies.size(),
                           "resume: {} restored results for {} policies", control.restored.size(), policies.size());
  const bool has_calibration = calib.states.defined() && calib.states.size(1) > 0;
  const int rank = dist_.world ? dist_.world->rank() : 0;
  std::vector<PolicyResult> results(policies.size());
  bool need_states = false;
  for (size_t p = 0; p < policies.size(); ++p) {
    SkipPolicy& policy = *policies[p];
    check_policy_requirements(policy, has_calibration, opts_.max_new_tokens);
    results[p].policy = policy.describe();
    results[p].index = policy.index_descriptor();
    results[p].layers = LayerCounts(model_.config().n_layers);
    results[p].rank = rank;
    if (policy.needs_calibration()) {
      const Stopwatch clock;
      policy.calibrate(calib);
      synchronize(model_.device());
      results[p].t_calib_ns = clock.nanoseconds();
    }
    need_states = need_states || policy.needs_full_states();
  }

  if (control.first_step > 0) {
    // The restored records and sums stand for the steps already run; this run's calibration
    // time is the one it spent (none when the restored projection needed no fitting).
    for (size_t p = 0; p < policies.size(); ++p) {
      const PolicyResult& r = control.restored[p];
      SEMSKIP_THROW_IF_NOT_MSG(r.policy == results[p].policy && r.index == results[p].index,
                               "resume: restored results of policy '{}' (index '{}') where '{}' (index '{}') runs",
                               r.policy, r.index, results[p].policy, results[p].index);
      const int64_t t_calib = results[p].t_calib_ns;
      results[p] = r;
      results[p].rank = rank;
      results[p].t_calib_ns += t_calib;
    }
  }

  const Lockstep lockstep(dist_.world);
  const StepRunner runner(model_, engine_, opts_, dist_, lockstep, rank);
  const size_t batch = static_cast<size_t>(opts_.batch);
  auto so_far = [&]() {
    for (size_t p = 0; p < policies.size(); ++p) results[p].cache = policies[p]->cache_stats();
    return results;
  };
  RunOutcome out;
  int64_t checkpointed = control.first_step;  // the boundary whose state is saved (or restored)
  for (int64_t step_index = control.first_step;; ++step_index) {
    const size_t begin = std::min(requests.size(), static_cast<size_t>(step_index) * batch);
    const size_t end = std::min(requests.size(), begin + batch);
    const bool my_stop = control.stop_requested && control.stop_requested(step_index);
    int64_t union_offset = 0;
    const Lockstep::Next next = lockstep.next_step(static_cast<int64_t>(end - begin), my_stop, union_offset);
    if (next == Lockstep::Next::done) {
      out.steps_done = step_index;
      break;
    }
    if (next == Lockstep::Next::stop) {
      // Every rank stops here; the state of this boundary is saved unless it already is.
      if (control.checkpoint && (checkpointed != step_index || step_index == control.first_step))
        control.checkpoint(step_index, so_far());
      out.steps_done = step_index;
      out.complete = false;
      break;
    }
    const FullStep full = runner.full(requests, begin, end, step_index, union_offset, need_states);
    for (size_t p = 0; p < policies.size(); ++p) runner.policy(*policies[p], full, results[p]);
    const int64_t steps_done = step_index + 1;
    if (control.checkpoint && control.checkpoint_every > 0 && steps_done % control.checkpoint_every == 0) {
      control.checkpoint(steps_done, so_far());
      checkpointed = steps_done;
    }
  }
  out.results = so_far();
  return out;
}

}  // namespace semskip
