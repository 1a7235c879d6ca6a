#include "serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace semskip::serve {

Scheduler::Scheduler(const SchedulerOptions& options, std::vector<SeqSpec> seqs)
    : options_(options),
      seqs_(std::move(seqs)),
      states_(seqs_.size()),
      blocks_(options.num_kv_blocks, options.block_size) {
  const SchedulerOptions& o = options_;
  SEMSKIP_THROW_IF_NOT_MSG(o.max_num_batched_tokens >= 1, "serve: max_num_batched_tokens must be >= 1, got {}",
                           o.max_num_batched_tokens);
  SEMSKIP_THROW_IF_NOT_MSG(o.max_num_seqs >= 1, "serve: max_num_seqs must be >= 1, got {}", o.max_num_seqs);
  SEMSKIP_THROW_IF_NOT_MSG(o.max_concurrency >= 0, "serve: max_concurrency must be >= 0 (0: unlimited), got {}",
                           o.max_concurrency);
  SEMSKIP_THROW_IF_NOT_MSG(o.max_model_len >= 2, "serve: max_model_len must be >= 2 (a prompt token and an output), got {}",
                           o.max_model_len);
  SEMSKIP_THROW_IF_NOT_MSG(blocks_.blocks_for(o.max_model_len) <= o.num_kv_blocks,
                           "serve: the KV pool of num_kv_blocks = {} blocks of block_size = {} slots holds {} slots, "
                           "fewer than one sequence of max_model_len = {} ({} blocks); raise num_kv_blocks or "
                           "kv_cache_bytes, or lower max_model_len",
                           o.num_kv_blocks, o.block_size, o.num_kv_blocks * o.block_size, o.max_model_len,
                           blocks_.blocks_for(o.max_model_len));
  SEMSKIP_THROW_IF_NOT_MSG(o.enable_chunked_prefill || o.max_num_batched_tokens >= o.max_model_len,
                           "serve: without chunked prefill a sequence is prefilled whole, so max_num_batched_tokens "
                           "({}) must be >= max_model_len ({}); enable chunked prefill or raise the budget",
                           o.max_num_batched_tokens, o.max_model_len);
  for (size_t i = 0; i < seqs_.size(); ++i) {
    const SeqSpec& s = seqs_[i];
    SEMSKIP_THROW_IF_NOT_MSG(s.n_prompt >= 1 && s.max_new_tokens >= 1 && s.n_prompt + s.max_new_tokens <= o.max_model_len,
                             "serve: sequence {}: {} prompt tokens and max_new_tokens {} must be >= 1 each and fit in "
                             "max_model_len = {}",
                             i, s.n_prompt, s.max_new_tokens, o.max_model_len);
    SEMSKIP_THROW_IF_NOT_MSG(std::isfinite(s.arrival_s) && s.arrival_s >= 0.0,
                             "serve: sequence {}: arrival time {} must be finite and >= 0", i, s.arrival_s);
  }
  pending_.resize(seqs_.size());
  std::iota(pending_.begin(), pending_.end(), 0);
  std::stable_sort(pending_.begin(), pending_.end(), [&](int64_t a, int64_t b) {
    return seqs_[static_cast<size_t>(a)].arrival_s < seqs_[static_cast<size_t>(b)].arrival_s;
  });
}

std::optional<double> Scheduler::next_arrival() const {
  if (next_pending_ >= pending_.size()) return std::nullopt;
  return seqs_[static_cast<size_t>(pending_[next_pending_])].arrival_s;
}

void Scheduler::let_in(double now) {
  while (next_pending_ < pending_.size()) {
    const int64_t seq = pending_[next_pending_];
    if (seqs_[static_cast<size_t>(seq)].arrival_s > now) break;
    State& st = states_[static_cast<size_t>(seq)];
    const int64_t in_flight = n_waiting() + n_running();
    if (options_.max_concurrency > 0 && in_flight >= options_.max_concurrency) {
      st.held = true;
      break;
    }
    st.status = Status::waiting;
    st.queued_s = st.held ? now : seqs_[static_cast<size_t>(seq)].arrival_s;
    waiting_.push_back(seq);
    ++next_pending_;
  }
}

void Scheduler::preempt(int64_t seq, SchedulerOutput& out, int64_t& budget) {
  State& st = states_[static_cast<size_t>(seq)];
  SEMSKIP_ASSERT(st.status == Status::running);
  const auto it = std::find_if(out.seqs.begin(), out.seqs.end(), [&](const ScheduledSeq& s) { return s.seq == seq; });
  if (it != out.seqs.end()) {
    budget += it->n_new;
    out.n_tokens -= it->n_new;
    out.seqs.erase(it);
  }
  blocks_.release(seq);
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  st.status = Status::waiting;
  st.n_computed = 0;
  ++st.n_preemptions;
  waiting_.push_front(seq);
  out.preempted.push_back(seq);
}

bool Scheduler::place(int64_t seq, int64_t n_new, SchedulerOutput& out, int64_t& budget) {
  State& st = states_[static_cast<size_t>(seq)];
  const int64_t need_slots = st.n_computed + n_new;
  while (!blocks_.can_grow(seq, need_slots)) {
    const int64_t victim = running_.back();
    preempt(victim, out, budget);
    if (victim == seq) return false;
  }
  blocks_.grow(seq, need_slots);
  ScheduledSeq s;
  s.seq = seq;
  s.n_computed = st.n_computed;
  s.n_new = n_new;
  s.samples = st.n_computed + n_new == n_tokens(seq);
  s.decode = n_new == 1 && s.samples && st.n_output >= 1;
  s.first = !st.started;
  out.seqs.push_back(s);
  out.n_tokens += n_new;
  budget -= n_new;
  return true;
}

SchedulerOutput Scheduler::schedule(double now) {
  let_in(now);
  SchedulerOutput out;
  int64_t budget = options_.max_num_batched_tokens;
  // Running sequences: decodes, then the ones with more than one token to compute.
  for (int pass = 0; pass < 2; ++pass) {
    const std::vector<int64_t> order = running_;  // pre-emption edits running_
    for (int64_t seq : order) {
      if (budget == 0) break;
      const State& st = states_[static_cast<size_t>(seq)];
      if (st.status != Status::running) continue;
      const int64_t need = n_tokens(seq) - st.n_computed;
      const bool decode = need == 1 && st.n_output >= 1;
      if (decode != (pass == 0)) continue;
      // Without chunked prefill a running sequence computed all its tokens when admitted.
      if (!options_.enable_chunked_prefill && need > budget) continue;
      place(seq, std::min(need, budget), out, budget);
    }
  }
  if (out.preempted.empty()) {
    while (!waiting_.empty() && budget > 0 && n_running() < options_.max_num_seqs) {
      const int64_t seq = waiting_.front();
      const int64_t need = n_tokens(seq);
      if (!options_.enable_chunked_prefill && need > budget) break;
      const int64_t n_new = std::min(need, budget);
      if (!blocks_.can_grow(seq, n_new)) break;
      waiting_.pop_front();
      states_[static_cast<size_t>(seq)].status = Status::running;
      running_.push_back(seq);
      const bool placed = place(seq, n_new, out, budget);
      SEMSKIP_ASSERT(placed);
    }
  }
  for (const ScheduledSeq& s : out.seqs) states_[static_cast<size_t>(s.seq)].started = true;
  return out;
}

void Scheduler::complete(const SchedulerOutput& out, const std::vector<bool>& stop) {
  SEMSKIP_ASSERT(stop.size() == out.seqs.size());
  for (size_t i = 0; i < out.seqs.size(); ++i) {
    const ScheduledSeq& s = out.seqs[i];
    State& st = states_[static_cast<size_t>(s.seq)];
    SEMSKIP_ASSERT(st.status == Status::running && st.n_computed == s.n_computed);
    st.n_computed += s.n_new;
    if (!s.samples) continue;
    ++st.n_output;
    if (stop[i] || st.n_output == seqs_[static_cast<size_t>(s.seq)].max_new_tokens) {
      st.status = Status::finished;
      blocks_.release(s.seq);
      running_.erase(std::find(running_.begin(), running_.end(), s.seq));
      ++n_finished_;
    }
  }
}

}  // namespace semskip::serve
