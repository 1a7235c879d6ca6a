#pragma once
// The iteration-level scheduler of the serving loop (vLLM's design: each step schedules a
// number of new tokens per sequence, and a decode is the case of one), on the host only, so
// tests drive it without a model.
//
// A sequence's tokens are its prompt followed by the tokens generated so far; its computed
// tokens are those whose K/V sit in its KV blocks. Each step gives a sequence tokens
// [n_computed, n_computed + n_new); when they reach its last known token, the step's logits
// there give its next output token ("samples").
//
// Each step, under a token budget (max_num_batched_tokens) and a sequence limit
// (max_num_seqs, on the running sequences, so on the step's batch too):
//   1. running sequences that decode (one new token each), in admission order;
//   2. running sequences with more to compute (a prompt chunk, a recomputation), in
//      admission order, each cut to the remaining budget;
//   3. unless step 1 or 2 pre-empted, waiting sequences in queue order (FIFO: the first that
//      does not fit stops admission), their prompt cut to the remaining budget with chunked
//      prefill, or admitted only whole without.
// A sequence gets the KV blocks of its scheduled tokens as it is scheduled. When the pool has
// too few, the running sequence admitted last is pre-empted (its blocks freed, and its tokens
// given back to the budget if it was already scheduled in this step) and goes to the front of
// the waiting queue; on readmission it recomputes its prompt and generated tokens, and its next
// token continues its output. Because the pool holds one max_model_len sequence (checked at
// construction), the sequence admitted first can always grow, so every request finishes.
//
// Arrivals: a request reaches the waiting queue once the clock passes its arrival time, and,
// with max_concurrency > 0, only while fewer than that many requests are in flight (waiting
// or running, unfinished); one held back that way counts as arriving when it is let in, as
// vLLM's benchmark client sends it only then.

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "serve/block_manager.h"

namespace semskip::serve {

struct SchedulerOptions {
  int64_t max_num_batched_tokens = 8192;
  int64_t max_num_seqs = 256;
  int64_t max_concurrency = 0;  // 0: unlimited
  bool enable_chunked_prefill = true;
  int64_t num_kv_blocks = 0;
  int64_t block_size = 16;
  int64_t max_model_len = 0;    // prompt + max_new_tokens of any sequence
};

// One sequence as the scheduler sees it (the server keeps its tokens).
struct SeqSpec {
  int64_t n_prompt = 0;        // >= 1
  int64_t max_new_tokens = 0;  // >= 1; n_prompt + max_new_tokens <= max_model_len
  double arrival_s = 0.0;
};

// A sequence's share of one step.
struct ScheduledSeq {
  int64_t seq = -1;          // index into the scheduler's specs
  int64_t n_computed = 0;    // tokens already in its blocks: the step's past
  int64_t n_new = 0;         // tokens computed in this step, positions [n_computed, n_computed + n_new)
  bool samples = false;      // the step reaches its last known token: it produces an output token
  bool decode = false;       // one new token, its latest output (else a prompt chunk or a recomputation)
  bool first = false;        // the first step that computes any of its tokens
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;  // decodes first, then the others, each in admission order
  std::vector<int64_t> preempted;  // sequences pre-empted while scheduling this step
  int64_t n_tokens = 0;            // Σ n_new
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  enum class Status { pending, waiting, running, finished };

  // semskip::Error naming the option when the options cannot work (a pool that cannot hold
  // one max_model_len sequence, whole prompts over the token budget without chunked prefill)
  // or a sequence breaks SeqSpec's bounds.
  Scheduler(const SchedulerOptions& options, std::vector<SeqSpec> seqs);

  // The next step at clock time `now` (seconds, non-decreasing over calls). Empty when
  // nothing has arrived or everything has finished.
  SchedulerOutput schedule(double now);
  // The step ran: sequences that sampled have one more output token; `stop[i]` (for
  // out.seqs[i]) ends that sequence at this token (an end token). A sequence also finishes at
  // its max_new_tokens. Finished sequences free their blocks.
  void complete(const SchedulerOutput& out, const std::vector<bool>& stop);

  bool done() const { return n_finished_ == static_cast<int64_t>(seqs_.size()); }
  // Earliest arrival time of a request not yet in the queue (none: all have arrived).
  std::optional<double> next_arrival() const;
  int64_t n_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t n_running() const { return static_cast<int64_t>(running_.size()); }
  const BlockManager& blocks() const { return blocks_; }
  const SchedulerOptions& options() const { return options_; }

  int64_t n_seqs() const { return static_cast<int64_t>(seqs_.size()); }
  Status status(int64_t seq) const { return state(seq).status; }
  int64_t n_output(int64_t seq) const { return state(seq).n_output; }
  int64_t n_computed(int64_t seq) const { return state(seq).n_computed; }
  int64_t n_preemptions(int64_t seq) const { return state(seq).n_preemptions; }
  // When it reached the queue (its arrival, or when max_concurrency let it in); < 0: not yet.
  double queued_s(int64_t seq) const { return state(seq).queued_s; }
  // Tokens known: prompt and output so far.
  int64_t n_tokens(int64_t seq) const { return seqs_[static_cast<size_t>(seq)].n_prompt + state(seq).n_output; }

 private:
  struct State {
    Status status = Status::pending;
    int64_t n_computed = 0, n_output = 0, n_preemptions = 0;
    double queued_s = -1.0;
    bool held = false;      // arrived but kept out by max_concurrency
    bool started = false;   // some token of it has been computed
  };
  const State& state(int64_t seq) const { return states_[static_cast<size_t>(seq)]; }
  void let_in(double now);
  void preempt(int64_t seq, SchedulerOutput& out, int64_t& budget);
  // Schedules n_new tokens of `seq` into `out`, pre-empting as needed; false when `seq`
  // itself was pre-empted.
  bool place(int64_t seq, int64_t n_new, SchedulerOutput& out, int64_t& budget);

  SchedulerOptions options_;
  std::vector<SeqSpec> seqs_;
  std::vector<State> states_;
  std::vector<int64_t> pending_;  // not yet queued, by arrival (then index); consumed from next_pending_
  size_t next_pending_ = 0;
  std::deque<int64_t> waiting_;
  std::vector<int64_t> running_;  // admission order
  BlockManager blocks_;
  int64_t n_finished_ = 0;
};

}  // namespace semskip::serve
