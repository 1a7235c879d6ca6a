#include "engine/evaluator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "model/transformer.h"
#include "skip/baseline_policies.h"

namespace semskip {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Requests [begin, end) left-padded into one step.
struct StepBatch {
  at::Tensor ids;    // int64 [B, S]
  at::Tensor valid;  // bool [B, S]
  std::vector<int64_t> rows;
  std::vector<const Request*> requests;
};

StepBatch make_batch(const std::vector<Request>& requests, size_t begin, size_t end, at::Device device) {
  StepBatch sb;
  int64_t S = 0;
  for (size_t i = begin; i < end; ++i) S = std::max(S, requests[i].n_tokens_prompt());
  const int64_t B = static_cast<int64_t>(end - begin);
  at::Tensor ids = at::zeros({B, S}, at::kLong);
  at::Tensor valid = at::zeros({B, S}, at::kBool);
  for (size_t i = begin; i < end; ++i) {
    const Request& r = requests[i];
    SEMSKIP_THROW_IF_NOT_MSG(r.n_tokens_prompt() > 0, "request {} ({}) has an empty prompt", r.id, r.where());
    const int64_t b = static_cast<int64_t>(i - begin), n = r.n_tokens_prompt(), pad = S - n;
    std::vector<int64_t> toks(r.prompt_tokens.begin(), r.prompt_tokens.end());
    ids[b].slice(0, pad, S).copy_(at::tensor(toks, at::kLong));
    valid[b].slice(0, pad, S).fill_(true);
    sb.rows.push_back(b);
    sb.requests.push_back(&r);
  }
  sb.ids = ids.to(device);
  sb.valid = valid.to(device);
  return sb;
}

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

}  // namespace

Evaluator::Evaluator(const Transformer& model, EvalOptions options)
    : model_(model), opts_(options), engine_(model) {
  SEMSKIP_THROW_IF_NOT_MSG(opts_.batch >= 1, "batch must be ≥ 1, got {}", opts_.batch);
  SEMSKIP_THROW_IF_NOT_MSG(opts_.max_new_tokens >= 0, "max-new-tokens must be ≥ 0");
}

CalibrationSet Evaluator::calibrate(const std::vector<Request>& requests) const {
  CalibrationSet calib;
  if (requests.empty()) return calib;
  const ModelConfig& cfg = model_.config();
  NonePolicy none(Descriptor::parse("none"));
  std::vector<at::Tensor> parts;
  for (size_t begin = 0; begin < requests.size(); begin += static_cast<size_t>(opts_.batch)) {
    const size_t end = std::min(requests.size(), begin + static_cast<size_t>(opts_.batch));
    StepBatch sb = make_batch(requests, begin, end, model_.device());
    StepContext ctx(cfg.n_layers, cfg.hidden_size, sb.valid, sb.rows, true);
    SkipKvCache kv = engine_.make_cache(sb.ids.size(0), sb.ids.size(1));
    at::Tensor states;
    engine_.step(sb.ids, ctx, kv, none, nullptr, nullptr, &states);  // [L+1, B, S, d]
    at::Tensor flat_valid = sb.valid.reshape({-1}).nonzero().squeeze(1);
    parts.push_back(states.flatten(1, 2).index_select(1, flat_valid).to(at::kCPU, at::kFloat));
  }
  calib.states = at::cat(parts, 1);  // fp32 [L+1, N, d]
  return calib;
}

namespace {

// Greedy continuation of a prefilled step: `first` holds each row's next token (argmax of
// the prefill's last position). Returns [B][n] tokens; rows stop at eos.
std::vector<std::vector<int64_t>> continue_greedy(const SkipEngine& engine, const Transformer& model,
                                                  at::Tensor next, const std::vector<int64_t>& rows,
                                                  SkipKvCache& kv, SkipPolicy& policy, const EvalOptions& o,
                                                  FlopCounter* flops, LayerCounts* counts,
                                                  std::vector<int64_t>& block, std::vector<int64_t>& mlp,
                                                  int64_t& t_lookup_ns) {
  const ModelConfig& cfg = model.config();
  const int64_t B = next.size(0);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  std::vector<bool> done(static_cast<size_t>(B), false);
  for (int64_t t = 0; t < o.max_new_tokens; ++t) {
    at::Tensor nc = next.to(at::kCPU);
    at::Tensor valid = at::zeros({B, 1}, at::kBool);
    for (int64_t b = 0; b < B; ++b) {
      if (done[static_cast<size_t>(b)]) continue;
      const int64_t tok = nc[b].item<int64_t>();
      out[static_cast<size_t>(b)].push_back(tok);
      if (tok == o.eos_token) done[static_cast<size_t>(b)] = true;
      else valid[b][0] = true;
    }
    if (t + 1 == o.max_new_tokens || !valid.any().item<bool>()) break;
    StepContext ctx(cfg.n_layers, cfg.hidden_size, valid.to(model.device()), rows, false);
    ctx.flops = flops;
    at::Tensor logits = engine.step(next.unsqueeze(1).to(model.device()), ctx, kv, policy, flops, counts);
    add_row_skips(ctx, block, mlp);
    t_lookup_ns += ctx.t_lookup_ns;
    next = logits.select(1, 0).argmax(-1);
  }
  return out;
}

}  // namespace

std::vector<PolicyResult> Evaluator::run(const std::vector<Request>& requests,
                                         std::vector<std::unique_ptr<SkipPolicy>>& policies,
                                         const CalibrationSet& calib) const {
  const ModelConfig& cfg = model_.config();
  const int64_t L = cfg.n_layers;
  std::vector<PolicyResult> results(policies.size());
  bool need_states = false;
  for (size_t p = 0; p < policies.size(); ++p) {
    SkipPolicy& policy = *policies[p];
    results[p].policy = policy.describe();
    results[p].index = policy.index_descriptor();
    results[p].layers = LayerCounts(L);
    if (policy.needs_calibration()) {
      SEMSKIP_THROW_IF_NOT_MSG(calib.states.defined() && calib.states.size(1) > 0,
                               "policy '{}' needs calibration requests (--calib-requests > 0)", policy.describe());
      const int64_t t0 = now_ns();
      policy.calibrate(calib);
      results[p].t_calib_ns = now_ns() - t0;
    }
    need_states = need_states || policy.needs_full_states();
    SEMSKIP_THROW_IF_NOT_MSG(!policy.needs_full_states() || opts_.max_new_tokens == 0,
                             "policy '{}' needs the full model's states and runs in teacher-forced "
                             "evaluation only (max-new-tokens 0)", policy.describe());
  }

  NonePolicy none(Descriptor::parse("none"));
  int64_t step_index = 0;
  for (size_t begin = 0; begin < requests.size(); begin += static_cast<size_t>(opts_.batch), ++step_index) {
    const size_t end = std::min(requests.size(), begin + static_cast<size_t>(opts_.batch));
    StepBatch sb = make_batch(requests, begin, end, model_.device());
    const int64_t B = sb.ids.size(0), S = sb.ids.size(1);
    const int64_t capacity = S + opts_.max_new_tokens;

    // The full model, once per step for every policy.
    FlopCounter f_full;
    std::vector<int64_t> unused_block(static_cast<size_t>(B), 0), unused_mlp(static_cast<size_t>(B), 0);
    int64_t unused_lookup = 0;
    int64_t t0 = now_ns();
    StepContext ctx_full(L, cfg.hidden_size, sb.valid, sb.rows, true);
    SkipKvCache kv_full = engine_.make_cache(B, capacity);
    at::Tensor states;
    at::Tensor logits_full = engine_.step(sb.ids, ctx_full, kv_full, none, &f_full, nullptr,
                                          need_states ? &states : nullptr);
    std::vector<std::vector<int64_t>> gen_full;
    if (opts_.max_new_tokens > 0)
      gen_full = continue_greedy(engine_, model_, logits_full.select(1, S - 1).argmax(-1), sb.rows, kv_full, none,
                                 opts_, &f_full, nullptr, unused_block, unused_mlp, unused_lookup);
    const at::Tensor lf = logits_full.to(at::kCPU, at::kFloat);
    const int64_t t_full = now_ns() - t0;

    for (size_t p = 0; p < policies.size(); ++p) {
      SkipPolicy& policy = *policies[p];
      PolicyResult& res = results[p];
      FlopCounter f;
      LayerCounts counts(L);
      std::vector<int64_t> block(static_cast<size_t>(B), 0), mlp(static_cast<size_t>(B), 0);
      for (int64_t row : sb.rows) policy.begin_request(row);
      t0 = now_ns();
      StepContext ctx(L, cfg.hidden_size, sb.valid, sb.rows, true);
      ctx.flops = &f;
      if (policy.needs_full_states()) ctx.full_states = states;
      SkipKvCache kv = engine_.make_cache(B, capacity);
      at::Tensor logits = engine_.step(sb.ids, ctx, kv, policy, &f, &counts);
      add_row_skips(ctx, block, mlp);
      int64_t t_lookup = ctx.t_lookup_ns;
      std::vector<std::vector<int64_t>> gen;
      if (opts_.max_new_tokens > 0)
        gen = continue_greedy(engine_, model_, logits.select(1, S - 1).argmax(-1), sb.rows, kv, policy, opts_, &f,
                              &counts, block, mlp, t_lookup);
      const at::Tensor ls = logits.to(at::kCPU, at::kFloat);
      const int64_t t_skip = now_ns() - t0;

      for (int64_t b = 0; b < B; ++b) {
        const Request& r = *sb.requests[static_cast<size_t>(b)];
        const int64_t n = r.n_tokens_prompt();
        at::Tensor targets = at::full({n}, -1, at::kLong);
        for (int64_t t = 0; t + 1 < n; ++t) targets[t] = static_cast<int64_t>(r.prompt_tokens[static_cast<size_t>(t + 1)]);
        RequestRecord rec;
        rec.request_id = r.id;
        rec.step = step_index;
        rec.n_tokens = n;
        rec.n_block_skips = block[static_cast<size_t>(b)];
        rec.n_mlp_skips = mlp[static_cast<size_t>(b)];
        rec.accuracy = compare_logits(lf[b].slice(0, S - n, S), ls[b].slice(0, S - n, S), targets);
        if (opts_.max_new_tokens > 0)
          compare_generations(gen_full[static_cast<size_t>(b)], gen[static_cast<size_t>(b)], rec.accuracy);
        res.requests.push_back(rec);
      }
      StepRecord st;
      st.step = step_index;
      st.n_requests = B;
      st.n_tokens = counts.n_block_run[0] + counts.n_block_skip[0];
      st.flops_full = f_full.total_model(AttnConvention::causal);
      st.flops_executed = f.total_model(AttnConvention::causal);
      st.flops_overhead = f.total_overhead();
      st.t_full_ns = t_full;
      st.t_skip_ns = t_skip;
      st.t_lookup_ns = t_lookup;
      res.steps.push_back(st);
      res.flops_full.merge(f_full);
      res.flops_skip.merge(f);
      res.layers.merge(counts);
      res.t_full_ns += t_full;
      res.t_skip_ns += t_skip;
      res.t_lookup_ns += t_lookup;
    }
  }
  for (size_t p = 0; p < policies.size(); ++p) results[p].cache = policies[p]->cache_stats();
  return results;
}

}  // namespace semskip
