#include "serve/server.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <thread>
#include <unordered_set>

#include "core/error.h"
#include "engine/step_batch.h"
#include "metrics/flop_counter.h"
#include "metrics/timing.h"
#include "model/fixed_decode.h"
#include "model/layer_dims.h"
#include "model/transformer.h"
#include "serve/paged_kv.h"
#include "serve/scheduler.h"
#include "skip/baseline_policies.h"
#include "skip/descriptor.h"

namespace semskip::serve {

namespace {

int64_t model_position_limit(const Transformer& m) {
  return m.options().max_model_len > 0 ? m.options().max_model_len : m.config().max_position_embeddings;
}

SchedulerOptions scheduler_options(const ServeOptions& o) {
  SchedulerOptions s;
  s.max_num_batched_tokens = o.max_num_batched_tokens;
  s.max_num_seqs = o.max_num_seqs;
  s.max_concurrency = o.max_concurrency;
  s.enable_chunked_prefill = o.enable_chunked_prefill;
  s.num_kv_blocks = o.num_kv_blocks;
  s.block_size = o.block_size;
  s.max_model_len = o.max_model_len;
  return s;
}

// The full model's FLOPs of one token at `position` through every layer (causal attention: it
// attends to position + 1 keys), as the engine counts an unskipped step. The head runs once
// per sequence of a step, on its newest token (the engine's last-token logits).
// `run` (per layer; null: all): also the FLOPs through the layers that run, as the engine
// charges a step of a policy that skips the others for every token (bypassed layers charge
// nothing).
struct TokenFlops {
  int64_t full = 0, run = 0;
};
TokenFlops token_flops(const ModelConfig& c, int64_t position, const std::vector<bool>* run = nullptr) {
  TokenFlops f;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const int64_t layer = flops::layer_token_flops(layer_dims(c, l), position + 1).total();
    f.full += layer;
    if (!run || (*run)[static_cast<size_t>(l)]) f.run += layer;
  }
  return f;
}

// Why a request cannot be served, or "".
std::string refusal(const ServeRequest& r, int64_t max_model_len, int64_t vocab) {
  const std::string who = r.where.empty() ? fmt::format("request {}", r.id) : fmt::format("request {} ({})", r.id, r.where);
  if (r.prompt.empty()) return who + ": the prompt is empty";
  if (r.max_new_tokens < 1) return fmt::format("{}: max_new_tokens must be >= 1, got {}", who, r.max_new_tokens);
  for (int32_t t : r.prompt)
    if (t < 0 || t >= vocab) return fmt::format("{}: token id {} outside the vocabulary [0, {})", who, t, vocab);
  const int64_t n = static_cast<int64_t>(r.prompt.size());
  if (n + r.max_new_tokens > max_model_len)
    return fmt::format("{}: {} prompt tokens + max_new_tokens {} = {} exceed max_model_len {}", who, n,
                       r.max_new_tokens, n + r.max_new_tokens, max_model_len);
  return {};
}

}  // namespace

int64_t kv_blocks_for_bytes(const Transformer& model, int64_t block_size, int64_t bytes) {
  SEMSKIP_THROW_IF_NOT_MSG(block_size >= 1, "serve: block_size must be >= 1, got {}", block_size);
  return bytes / PagedKvPool::bytes_per_block(model, block_size);
}

Server::Server(const Transformer& model, SkipPolicy* policy, ServeOptions options)
    : model_(model), policy_(policy), options_(std::move(options)), engine_(model, nullptr, options_.row_exec) {
  ServeOptions& o = options_;
  engine_.set_last_token_logits(true);  // the next token needs only each row's newest logits
  const int64_t limit = model_position_limit(model);
  SEMSKIP_THROW_IF_NOT_MSG(o.max_model_len >= 0, "serve: max_model_len must be >= 0 (0: the model's {}), got {}",
                           limit, o.max_model_len);
  SEMSKIP_THROW_IF_NOT_MSG(o.max_model_len <= limit,
                           "serve: max_model_len {} exceeds the {} positions the model allows ({}; "
                           "ModelOptions::max_model_len raises that limit)",
                           o.max_model_len, limit, model.config().source);
  if (o.max_model_len == 0) o.max_model_len = limit;
  SEMSKIP_THROW_IF_NOT_MSG(o.block_size >= 1, "serve: block_size must be >= 1, got {}", o.block_size);
  SEMSKIP_THROW_IF_NOT_MSG(o.num_kv_blocks >= 0 && o.kv_cache_bytes >= 0,
                           "serve: num_kv_blocks ({}) and kv_cache_bytes ({}) must be >= 0 (0: derived)",
                           o.num_kv_blocks, o.kv_cache_bytes);
  SEMSKIP_THROW_IF_NOT_MSG(o.max_num_seqs >= 1, "serve: max_num_seqs must be >= 1, got {}", o.max_num_seqs);
  if (o.num_kv_blocks == 0) {
    if (o.kv_cache_bytes > 0) {
      o.num_kv_blocks = kv_blocks_for_bytes(model, o.block_size, o.kv_cache_bytes);
      SEMSKIP_THROW_IF_NOT_MSG(o.num_kv_blocks >= 1,
                               "serve: kv_cache_bytes = {} holds no KV block of block_size {} ({} bytes each)",
                               o.kv_cache_bytes, o.block_size, PagedKvPool::bytes_per_block(model, o.block_size));
    } else {
      o.num_kv_blocks = o.max_num_seqs * ((o.max_model_len + o.block_size - 1) / o.block_size);
    }
  }
  PagedKvPool::check_fits(model, o.num_kv_blocks, o.block_size);
  // The scheduler's checks of the options, before any memory is allocated.
  Scheduler check(scheduler_options(o), {});
  (void)check;
  if (!policy_) {
    none_ = std::make_unique<NonePolicy>(Descriptor::parse("none"));
    policy_ = none_.get();
  }
  pool_ = std::make_unique<PagedKvPool>(model, o.num_kv_blocks, o.block_size);
  const bool cuda = model.device().is_cuda();
  SEMSKIP_THROW_IF_NOT_MSG(o.decode != DecodeMode::graph || cuda,
                           "serve: decode mode graph needs a CUDA device (the model is on {}); use fixed, eager or auto",
                           model.device().str());
  decode_ = o.decode == DecodeMode::auto_ ? (cuda ? DecodeMode::graph : DecodeMode::eager) : o.decode;
  if (o.lockstep) decode_ = DecodeMode::eager;
}

Server::~Server() = default;

ServeResult Server::run(const std::vector<ServeRequest>& requests) {
  const ModelConfig& cfg = model_.config();
  const ServeOptions& o = options_;
  const int64_t L = cfg.n_layers;
  const at::Device dev = model_.device();

  ServeResult res;
  res.policy = policy_->describe();
  res.row_exec = o.row_exec;
  res.n_kv_blocks = o.num_kv_blocks;
  res.counts = LayerCounts(L);
  res.requests.resize(requests.size());
  std::unordered_set<int64_t> ids;
  std::vector<SeqSpec> specs;
  std::vector<size_t> req_of;  // sequence -> index into `requests`
  for (size_t i = 0; i < requests.size(); ++i) {
    const ServeRequest& r = requests[i];
    const std::string where = r.where.empty() ? "" : " (" + r.where + ")";
    SEMSKIP_THROW_IF_NOT_MSG(ids.insert(r.id).second, "serve: request id {}{} appears more than once", r.id, where);
    SEMSKIP_THROW_IF_NOT_MSG(std::isfinite(r.arrival_s) && r.arrival_s >= 0.0,
                             "serve: request {}{}: arrival time {} must be finite and >= 0", r.id, where, r.arrival_s);
    RequestRecord& rec = res.requests[i];
    rec.id = r.id;
    rec.n_prompt_tokens = static_cast<int64_t>(r.prompt.size());
    rec.arrival_s = r.arrival_s;
    const std::string why = refusal(r, o.max_model_len, cfg.vocab_size);
    if (!why.empty()) {
      rec.error = why;
      rec.finish_reason = "error";
      continue;
    }
    specs.push_back({rec.n_prompt_tokens, r.max_new_tokens, r.arrival_s});
    req_of.push_back(i);
  }
  Scheduler sched(scheduler_options(o), specs);
  // Per sequence: its tokens, prompt then output.
  std::vector<std::vector<int64_t>> tokens(specs.size());
  for (size_t s = 0; s < specs.size(); ++s) {
    const std::vector<int32_t>& p = requests[req_of[s]].prompt;
    tokens[s].assign(p.begin(), p.end());
  }
  FlopCounter flops;
  // The last step's dense cache, while the next step may decode on it (see below).
  struct Carried {
    std::vector<int64_t> seqs;     // its sequences, in row order
    std::vector<int64_t> n_after;  // per row: tokens in the cache after it
    std::optional<KvCache> kv;
  } carried;
  // The fixed-shape decoding over carried.kv while the same sequences decode: policy none, or
  // one that skips whole layers only (static), whose layers the step leaves out.
  std::unique_ptr<FixedDecoder> burst;
  int64_t fixed_flops = 0;  // executed FLOPs of its steps
  const std::optional<std::vector<int64_t>> bypass =
      decode_ != DecodeMode::eager ? policy_->bypass_layers() : std::nullopt;
  // Under RowExec::mask skipped layers run and are dropped (the outputs of skipping at no
  // saving): a step without them would not be that, so only policy none decodes fixed-shape.
  const bool fixed_allowed = bypass.has_value() && (bypass->empty() || o.row_exec != RowExec::mask);
  std::vector<bool> layer_runs(static_cast<size_t>(L), true);  // false: bypassed in fixed-shape steps
  if (bypass)
    for (int64_t l : *bypass) layer_runs[static_cast<size_t>(l)] = false;

  synchronize(dev);
  const Stopwatch clock;
  double t_end = 0.0;
  while (true) {
    const double t0 = clock.seconds();
    SchedulerOutput out = sched.schedule(t0);
    int64_t row_offset = 0;
    if (o.lockstep) {
      LockstepState mine;
      mine.has_step = !out.empty();
      mine.has_unfinished = !sched.done();
      mine.next_arrival_s = sched.next_arrival().value_or(-1.0);
      mine.n_seqs = static_cast<int64_t>(out.seqs.size());
      const LockstepState job = o.lockstep(mine);
      if (!job.has_unfinished && !job.has_step) break;
      if (!job.has_step) {
        SEMSKIP_ASSERT(job.next_arrival_s >= 0.0);
        std::this_thread::sleep_for(std::chrono::duration<double>(std::max(0.0, job.next_arrival_s - clock.seconds())));
        continue;
      }
      row_offset = job.row_offset;
    } else if (out.empty()) {
      if (sched.done()) break;
      const std::optional<double> next = sched.next_arrival();
      SEMSKIP_ASSERT(next.has_value());
      std::this_thread::sleep_for(std::chrono::duration<double>(std::max(0.0, *next - clock.seconds())));
      continue;
    }

    StepRecord step;
    step.index = static_cast<int64_t>(res.steps.size());
    step.start_s = t0;
    const double t_scheduled = clock.seconds();
    step.t_schedule_s = t_scheduled - t0;
    double t_forward_begin = t_scheduled, t_forward_end = t_scheduled;
    step.n_preempted = static_cast<int64_t>(out.preempted.size());
    LayerCounts counts(L);
    const int64_t B = static_cast<int64_t>(out.seqs.size());
    std::vector<bool> stop(static_cast<size_t>(B), false);
    if (B == 0) {
      burst.reset();
      carried.kv.reset();
      // Nothing of ours to compute; the other ranks' collectives still need this one.
      const StepBatch idle = empty_batch(dev);
      StepContext ctx(L, cfg.hidden_size, idle.valid, {}, false);
      ctx.flops = &flops;
      ctx.union_row_offset = row_offset;
      KvCache kv = engine_.make_cache(0, 1);
      step.n_forwards = 1;
      t_forward_begin = clock.seconds();
      engine_.step(idle.ids, ctx, kv, *policy_, &flops, &counts);
      t_forward_end = clock.seconds();
      step.t_lookup_s = static_cast<double>(ctx.t_lookup_ns) * 1e-9;
      synchronize(dev);
    } else {
      // The step's forwards: one over all its sequences or, with split_mixed_steps (and no
      // lockstep), the rows of one new token (decodes) and the longer prompt chunks apart, so
      // that a decoding row is not padded to the longest chunk (attention of a [B, S] forward
      // computes B·S queries).
      std::vector<std::vector<size_t>> groups(1);
      {
        std::vector<size_t> one, longer;
        for (size_t i = 0; i < out.seqs.size(); ++i) (out.seqs[i].n_new == 1 ? one : longer).push_back(i);
        if (o.split_mixed_steps && !o.lockstep && !one.empty() && !longer.empty()) {
          groups = {one, longer};
        } else {
          for (size_t i = 0; i < out.seqs.size(); ++i) groups[0].push_back(i);
        }
      }
      std::vector<int64_t> next_tok(static_cast<size_t>(B), -1), skip_p(static_cast<size_t>(B), 0),
          skip_o(static_cast<size_t>(B), 0);
      // A forward that decodes one token for each sequence of the last step's one-token
      // forward, in the same rows, with nothing recomputed in between, runs on that forward's
      // dense cache: it holds every row's past as the pool does (both got the new K/V),
      // right-aligned as a gather would lay it out (each row's newest slot in the last column),
      // so the gather is skipped. Anything else (a sequence joined, finished or was pre-empted,
      // a prompt chunk) gathers from the pool.
      const auto carries = [&](const std::vector<size_t>& g) {
        bool ok = o.carry_dense_kv && carried.kv.has_value() && carried.seqs.size() == g.size();
        for (size_t b = 0; ok && b < g.size(); ++b) {
          const ScheduledSeq& s = out.seqs[g[b]];
          ok = s.n_new == 1 && carried.seqs[b] == s.seq && carried.n_after[b] == s.n_computed;
        }
        return ok;
      };
      const bool fixed = fixed_allowed && groups.size() == 1 && carries(groups[0]) &&
                         (burst || fixed_decode_unsupported(model_, *carried.kv, *bypass).empty());
      if (!fixed && burst) {
        // Its batch has changed, or the step needs the engine: the cache's length catches up
        // with the steps run (a one-token forward of the same rows may still carry it).
        burst->finish();
        burst.reset();
      }
      std::optional<Carried> next_carried;
      double prep_s = 0.0, fwd_s = 0.0;
      step.kv_gathered = false;
      step.n_forwards = static_cast<int64_t>(groups.size());
      step.fixed_shape = fixed;
      if (fixed) {
        // A fixed-shape step over the carried cache (see server.h); its input is each row's
        // newest token, already in the decoder after its first step.
        const double t_group = clock.seconds();
        std::vector<int64_t> dst(static_cast<size_t>(B));
        const int64_t shared = flops::rotary(cfg.head_dim, B) + B * lm_head_token_flops(cfg);
        int64_t full = shared, executed = shared, most = 1;
        std::vector<int64_t> first(static_cast<size_t>(B));
        for (int64_t b = 0; b < B; ++b) {
          const ScheduledSeq& s = out.seqs[static_cast<size_t>(b)];
          const RequestRecord& rec = res.requests[req_of[static_cast<size_t>(s.seq)]];
          const ServeRequest& r = requests[req_of[static_cast<size_t>(s.seq)]];
          dst[static_cast<size_t>(b)] = sched.blocks().pool_slot(s.seq, s.n_computed);
          first[static_cast<size_t>(b)] = tokens[static_cast<size_t>(s.seq)][static_cast<size_t>(s.n_computed)];
          const TokenFlops tf = token_flops(cfg, s.n_computed, &layer_runs);
          full += tf.full;
          executed += tf.run;
          most = std::max<int64_t>(most, r.max_new_tokens - static_cast<int64_t>(rec.output_tokens.size()));
          ++step.n_decode_tokens;
        }
        res.flops_full += full;
        fixed_flops += executed;
        for (int64_t l = 0; l < L; ++l)
          (layer_runs[static_cast<size_t>(l)] ? counts.n_block_run : counts.n_block_skip)[static_cast<size_t>(l)] += B;
        if (!burst)
          burst = std::make_unique<FixedDecoder>(model_, *carried.kv, at::tensor(first, at::kLong).to(dev), most,
                                                 decode_ == DecodeMode::graph, *bypass);
        const at::Tensor dst_d = at::tensor(dst, at::kLong).to(dev);
        const double t_fb = clock.seconds();
        const at::Tensor tok = burst->step(/*wait=*/true);  // int64 [B, 1]
        const double t_fe = clock.seconds();
        prep_s += t_fb - t_group;
        fwd_s += t_fe - t_fb;
        pool_->write_slot(*carried.kv, burst->last_slot(), dst_d);
        const at::Tensor host = tok.reshape({B}).to(at::kCPU).contiguous();
        const int64_t* hp = host.data_ptr<int64_t>();
        for (int64_t b = 0; b < B; ++b) {
          next_tok[static_cast<size_t>(b)] = hp[b];
          ++carried.n_after[static_cast<size_t>(b)];
        }
        // The burst ends when its room is used up (every row then has finished).
        if (burst->steps() == burst->max_steps()) {
          burst.reset();
          carried.kv.reset();
        }
      }
      if (fixed) groups.clear();  // the step ran above, without the engine
      for (const std::vector<size_t>& g : groups) {
        const double t_group = clock.seconds();
        const int64_t Bg = static_cast<int64_t>(g.size());
        int64_t S = 0;
        for (size_t i : g) S = std::max(S, out.seqs[i].n_new);
        const bool carry = carries(g);
        if (!carry) carried.kv.reset();  // freed before the gather allocates its own
        // The forward's inputs, built on the host: right-aligned rows (model/generation.h's left_pad).
        at::Tensor ids = at::full({Bg, S}, o.pad_token_id, at::kLong);  // int64 [B, S]
        at::Tensor valid = at::zeros({Bg, S}, at::kBool);               // bool [B, S]
        at::Tensor is_prompt = at::zeros({Bg, S}, at::kLong);           // int64 [B, S]: 1 at prompt tokens
        std::vector<PagedRow> rows(g.size());
        std::vector<int64_t> ctx_rows(g.size());
        bool any_decode = false;
        int64_t full = flops::rotary(cfg.head_dim, Bg * S) + Bg * lm_head_token_flops(cfg);
        for (int64_t b = 0; b < Bg; ++b) {
          const ScheduledSeq& s = out.seqs[g[static_cast<size_t>(b)]];
          const ServeRequest& r = requests[req_of[static_cast<size_t>(s.seq)]];
          RequestRecord& rec = res.requests[req_of[static_cast<size_t>(s.seq)]];
          const std::vector<int64_t>& toks = tokens[static_cast<size_t>(s.seq)];
          const int64_t pad = S - s.n_new;
          int64_t* ip = ids.data_ptr<int64_t>() + b * S;
          bool* vp = valid.data_ptr<bool>() + b * S;
          int64_t* pp = is_prompt.data_ptr<int64_t>() + b * S;
          PagedRow& pr = rows[static_cast<size_t>(b)];
          if (!carry)
            for (int64_t j = 0; j < s.n_computed; ++j) pr.past.push_back(sched.blocks().pool_slot(s.seq, j));
          for (int64_t j = 0; j < s.n_new; ++j) {
            const int64_t pos = s.n_computed + j;
            ip[pad + j] = toks[static_cast<size_t>(pos)];
            vp[pad + j] = true;
            pp[pad + j] = pos < rec.n_prompt_tokens ? 1 : 0;
            pr.next.push_back(sched.blocks().pool_slot(s.seq, pos));
            full += token_flops(cfg, pos).full;
          }
          ctx_rows[static_cast<size_t>(b)] = r.id;
          if (s.first) {
            policy_->begin_request(r.id);
            rec.scheduled_s = t0;
          }
          if (s.decode) {
            any_decode = true;
            ++step.n_decode_tokens;
          } else {
            step.n_prefill_tokens += s.n_new;
          }
        }
        res.flops_full += full;
        const PagedStep layout = pool_->layout(rows, S, carry ? carried.kv->length(0) : -1);
        KvCache kv = carry ? std::move(*carried.kv) : pool_->gather(layout);
        carried.kv.reset();
        step.kv_gathered = step.kv_gathered || !carry;
        const at::Tensor valid_d = valid.to(dev);
        StepContext ctx(L, cfg.hidden_size, valid_d, ctx_rows, !any_decode);
        ctx.flops = &flops;
        ctx.union_row_offset = row_offset;
        const at::Tensor ids_d = ids.to(dev);
        const double t_fb = clock.seconds();
        const at::Tensor logits = engine_.step(ids_d, ctx, kv, *policy_, &flops, &counts);  // [B, 1, V]
        const double t_fe = clock.seconds();
        prep_s += t_fb - t_group;
        fwd_s += t_fe - t_fb;
        pool_->scatter(kv, layout);
        if (o.carry_dense_kv && S == 1) {
          Carried c;
          for (size_t i : g) {
            c.seqs.push_back(out.seqs[i].seq);
            c.n_after.push_back(out.seqs[i].n_computed + out.seqs[i].n_new);
          }
          c.kv = std::move(kv);
          next_carried = std::move(c);
        }
        // Per row: (token, layer) pairs that skipped a block, at prompt and at output tokens.
        at::Tensor skipped = at::zeros({Bg, S}, at::TensorOptions().dtype(at::kLong).device(dev));
        for (int64_t l = 0; l < L; ++l) {
          const at::Tensor& sb = ctx.skip_block_or_null(l);
          if (sb.defined()) skipped.add_(sb.logical_and(valid_d).to(at::kLong));
        }
        const at::Tensor prompt_d = is_prompt.to(dev);
        const at::Tensor skipped_prompt = (skipped * prompt_d).sum(1);
        const at::Tensor skipped_output = (skipped * (1 - prompt_d)).sum(1);
        // The forward's one read: next tokens and the skip counts (it waits for its work).
        const at::Tensor next = logits.select(1, 0).argmax(-1).to(at::kLong);  // int64 [B]
        const at::Tensor host = at::stack({next, skipped_prompt, skipped_output}).to(at::kCPU).contiguous();
        synchronize(dev);
        const int64_t* hp = host.data_ptr<int64_t>();
        for (int64_t b = 0; b < Bg; ++b) {
          const size_t i = g[static_cast<size_t>(b)];
          next_tok[i] = hp[b];
          skip_p[i] = hp[Bg + b];
          skip_o[i] = hp[2 * Bg + b];
        }
        step.t_lookup_s += static_cast<double>(ctx.t_lookup_ns) * 1e-9;
      }
      if (!fixed && next_carried) carried = std::move(*next_carried);
      t_forward_begin = t_scheduled + prep_s;
      t_forward_end = t_forward_begin + fwd_s;
      const double t_done = clock.seconds();
      for (int64_t b = 0; b < B; ++b) {
        const ScheduledSeq& s = out.seqs[static_cast<size_t>(b)];
        const ServeRequest& r = requests[req_of[static_cast<size_t>(s.seq)]];
        RequestRecord& rec = res.requests[req_of[static_cast<size_t>(s.seq)]];
        rec.n_prompt_tokens_skipped += skip_p[static_cast<size_t>(b)];
        rec.n_output_tokens_skipped += skip_o[static_cast<size_t>(b)];
        if (!s.samples) continue;
        const int64_t tok = next_tok[static_cast<size_t>(b)];
        tokens[static_cast<size_t>(s.seq)].push_back(tok);
        rec.output_tokens.push_back(tok);
        rec.token_times_s.push_back(t_done);
        if (rec.first_token_s < 0.0) rec.first_token_s = t_done;
        const bool eos = o.eos_token_id && !r.ignore_eos && tok == *o.eos_token_id;
        stop[static_cast<size_t>(b)] = eos;
        if (eos || static_cast<int64_t>(rec.output_tokens.size()) == r.max_new_tokens) {
          rec.finish_s = t_done;
          rec.finish_reason = eos ? "stop" : "length";
        }
      }
    }
    sched.complete(out, stop);
    t_end = clock.seconds();
    step.duration_s = t_end - t0;
    step.t_prepare_s = t_forward_begin - t_scheduled;
    step.t_forward_s = t_forward_end - t_forward_begin;
    step.t_finish_s = t_end - t_forward_end;
    step.n_seqs = B;
    step.n_waiting = sched.n_waiting();
    step.n_kv_blocks_used = sched.blocks().n_used();
    step.rows_skipping = counts.n_block_skip;
    step.rows_mlp_skipping = counts.n_mlp_skip;
    res.counts.merge(counts);
    res.steps.push_back(std::move(step));
    if (o.on_step) o.on_step(res.steps.back());
  }
  res.duration_s = t_end;
  for (size_t s = 0; s < specs.size(); ++s) {
    RequestRecord& rec = res.requests[req_of[s]];
    rec.n_preemptions = sched.n_preemptions(static_cast<int64_t>(s));
    rec.arrival_s = sched.queued_s(static_cast<int64_t>(s));
    res.n_preemptions += rec.n_preemptions;
  }
  res.flops_executed = flops.total(AttnConvention::causal) + fixed_flops;
  res.flops_overhead = flops.total_overhead();
  res.cache = policy_->cache_stats();
  return res;
}

}  // namespace semskip::serve
