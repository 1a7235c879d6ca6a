#pragma once
// The serving loop (semskip serve-bench): requests arrive over wall-clock time, wait in a
// queue, and are served by continuous batching, one scheduler step at a time, with the KV
// cache in fixed-size blocks under a memory budget (serve/scheduler.h decides each step,
// serve/paged_kv.h stores the blocks). Each step is one SkipEngine::step over the step's
// sequences, so a skip policy decides per token in prefill and decode alike, tokens that skip
// and tokens that run sharing one batch; the policy object and its semantic cache live for the
// whole run. A step that mixes decoding rows with prompt chunks runs as two forwards, the
// one-token rows and the chunks (ServeOptions::split_mixed_steps; not under lockstep, where
// every rank's forwards must pair up), each with its own StepContext; a decoding step of the
// same sequences as the last one runs on that step's dense K/V cache instead of a gather
// (ServeOptions::carry_dense_kv). Decoding is greedy: with no policy each request's tokens are those of
// generate_greedy on its prompt alone (a test holds the server to that).
//
// Time. The clock starts at run(); a request is visible to the scheduler once the clock has
// passed its arrival_s. When nothing is running and nothing has arrived the loop sleeps until
// the next arrival. A step starts before its scheduling (a request's scheduled_s is the start
// of the first step that computes any of its tokens) and ends with the device synchronised
// (its tokens read to the host once); its end time is the time of the tokens it produced
// (serve/records.h). With max_concurrency a request held back counts as arriving when it is
// let in (RequestRecord::arrival_s is then that time), as vLLM's benchmark client sends it.
//
// Prefill flag. StepContext::prefill() is true in a forward with no decoding sequence (every
// row computes prompt or recomputed tokens) and false otherwise: token-level policies
// (residual, static, random) do not read it, and the plan policy looks a request up only in a
// forward of prompts. With split_mixed_steps every prompt chunk of more than one token is in
// such a forward; without it (or under lockstep) a new request in a mixed step runs the full
// model and its decodes have no plan.
//
// Requests the server cannot serve (an empty prompt, a token id outside the vocabulary,
// max_new_tokens < 1, prompt + max_new_tokens over max_model_len) are not scheduled: their
// record carries the error and finish_reason "error", and the others are served. Inputs that break the run's contract
// (duplicate ids, an arrival time that is not finite or negative) and options that cannot work
// (a block pool that cannot hold one max_model_len sequence) throw semskip::Error before
// anything is served.
//
// Fixed-shape decoding (ServeOptions::decode). With policy none, or one that skips whole layers
// only (SkipPolicy::bypass_layers: static with target=block; the step leaves its layers out
// and keeps their new keys hidden; not under RowExec::mask, whose skipped layers run and are
// dropped), a step that decodes one token
// for each sequence of the step before (the carried cache's condition) runs as a step of a
// model/fixed_decode.h FixedDecoder over the carried dense cache, created for the batch with
// room for the most tokens any row still needs; it ends when the batch changes (a sequence
// finishes, joins or is pre-empted), and the next such stretch starts a new one (a new capture
// in graph mode). Each step's new K/V are copied from the dense cache into the pool, so that a
// later gather finds them. FLOPs executed are charged as the engine charges the same step (the
// layers that run, the same causal convention: masked slots are not charged).
//
// Data-parallel replicas (under mpirun): each rank runs its own Server on its share of the
// requests. With ServeOptions::lockstep set, every rank takes the same number of steps; a rank
// with nothing to compute in a step takes an empty step (B = 0), which still joins the
// collectives of the policy's sync rule and of a replicated or sharded semantic cache.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/skip_engine.h"
#include "model/generation.h"
#include "model/layer_plan.h"
#include "serve/records.h"
#include "skip/skip_policy.h"

namespace semskip {
class Transformer;
}

namespace semskip::serve {

class PagedKvPool;

// What each rank knows at the top of a lockstep iteration, after scheduling its step; the
// hook returns the job's: any over ranks for the flags, the minimum over ranks for the next
// arrival (< 0 on every rank: none), and in row_offset the sum of n_seqs over the ranks
// before this one (StepContext::union_row_offset of the step).
struct LockstepState {
  bool has_step = false;        // this rank has tokens to compute now
  bool has_unfinished = false;  // some request of this rank has not finished
  double next_arrival_s = -1.0; // the earliest arrival not yet visible (< 0: none)
  int64_t n_seqs = 0;           // sequences in this rank's step
  int64_t row_offset = 0;       // returned: Σ n_seqs of the ranks before this one
};
using LockstepHook = std::function<LockstepState(const LockstepState& mine)>;

struct ServeOptions {
  int64_t max_num_batched_tokens = 8192;  // per-step token budget (prefill chunks + decode tokens)
  int64_t max_num_seqs = 256;             // sequences in a step's batch
  int64_t block_size = 16;                // KV slots per block
  // KV blocks in the pool. 0: from kv_cache_bytes when that is > 0, else enough for
  // max_num_seqs sequences of max_model_len.
  int64_t num_kv_blocks = 0;
  int64_t kv_cache_bytes = 0;             // memory budget of the pool (K and V of every layer)
  int64_t max_model_len = 0;              // prompt + output tokens per request; 0: max_position_embeddings
  // false: a prompt is prefilled whole in one step (it waits until the budget holds it);
  // true: prompts are cut into chunks that fill the step's remaining token budget.
  bool enable_chunked_prefill = true;
  int64_t max_concurrency = 0;            // requests in flight (admitted, unfinished); 0: unlimited
  std::optional<int64_t> eos_token_id;    // a request stops after producing it, unless ignore_eos
  int64_t pad_token_id = 0;               // id fed at padding slots (never attended to)
  // How the rows of a layer that skip and those that run are executed (model/layer_plan.h):
  // gather, bucket or mask give the same tokens for the same decisions, at different shapes.
  RowExec row_exec = RowExec::gather;
  // Keep a step's dense K/V cache for a next step that decodes the same sequences (no gather
  // from the pool then); false: every step gathers. The tokens are the same either way.
  bool carry_dense_kv = true;
  // Run a step that mixes one-token rows (decodes) with longer prompt chunks as two forwards,
  // so that decoding rows are not padded to the chunks' length; false: one forward per step.
  // Ignored under lockstep (one forward per step there). The tokens are the same either way.
  bool split_mixed_steps = true;
  // How decoding steps of policy none, or of a whole-layer policy (static), run
  // (model/generation.h): eager (the skip engine's forward, as every other policy), fixed or graph (model/fixed_decode.h: a burst of
  // fixed-shape steps over the carried dense cache while the same sequences decode, one CUDA
  // graph replayed per step in graph mode; a step's new K/V go from that cache to the pool), or
  // auto (graph on CUDA, else eager). Not under lockstep. The tokens are the same (fp32; in
  // bf16 up to summation order).
  DecodeMode decode = DecodeMode::auto_;
  // Lockstep over data-parallel replicas; null: one process (the loop ends when this rank's
  // requests have all finished).
  LockstepHook lockstep;
  // Called after each step with its record (a progress line); may be null.
  std::function<void(const StepRecord&)> on_step;
};

struct ServeResult {
  std::vector<RequestRecord> requests;  // in the order of run()'s input
  std::vector<StepRecord> steps;        // every step taken, empty lockstep steps included
  double duration_s = 0.0;              // from the clock's start to the end of the last step
  std::string policy;                   // the policy's descriptor ("none" without one)
  RowExec row_exec = RowExec::gather;   // ServeOptions::row_exec of the run
  CacheStats cache;                     // the policy's semantic cache at the end
  // FLOPs (causal attention, docs/architecture.md §5): the full model on the tokens computed
  // (recomputed ones included), what was executed (overheads included) and the overheads.
  int64_t flops_full = 0, flops_executed = 0, flops_overhead = 0;
  LayerCounts counts;                   // per layer: tokens that ran / skipped, over all steps
  int64_t n_kv_blocks = 0;              // blocks in the pool
  int64_t n_preemptions = 0;            // over all requests
};

class Server {
 public:
  // `policy` null: the full model. The model and the policy must outlive the server.
  // semskip::Error when the options cannot work (names the option and the problem).
  Server(const Transformer& model, SkipPolicy* policy, ServeOptions options);
  ~Server();

  const ServeOptions& options() const { return options_; }  // with the derived sizes filled in

  // Serves the requests (each once, arrival times relative to the call) and returns their
  // records. A Server may run several times; the policy's cache carries over between runs.
  ServeResult run(const std::vector<ServeRequest>& requests);

 private:
  const Transformer& model_;
  SkipPolicy* policy_;
  ServeOptions options_;
  SkipEngine engine_;
  std::unique_ptr<SkipPolicy> none_;    // the policy of `policy` null
  std::unique_ptr<PagedKvPool> pool_;   // the KV blocks, allocated once
  DecodeMode decode_ = DecodeMode::eager;  // options_.decode resolved
};

// KV blocks that fit in `bytes` for `model` (K and V of every layer, compute dtype).
int64_t kv_blocks_for_bytes(const Transformer& model, int64_t block_size, int64_t bytes);

}  // namespace semskip::serve
