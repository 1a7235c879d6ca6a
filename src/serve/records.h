#pragma once
// What a serving run records (semskip serve-bench): per request its times and tokens, per
// scheduler step the batch composition. The server loop (serve/server.h) fills them; the
// benchmark metrics (TTFT, TPOT, ITL, E2EL, goodput), the result JSON and the HDF5 report's
// /requests and /steps read them. Times are seconds from the start of the serving run
// (the first step's clock), measured on the host after the device finished the step.

#include <cstdint>
#include <string>
#include <vector>

namespace semskip::serve {

// One request as the server sees it.
struct ServeRequest {
  int64_t id = -1;                   // unique in the run (the workload's request id)
  std::vector<int32_t> prompt;       // token ids, the chat template already applied
  int64_t max_new_tokens = 0;        // tokens to generate (>= 1)
  double arrival_s = 0.0;            // when it reaches the server's queue
  bool ignore_eos = false;           // true: generate max_new_tokens even past an end token
  std::string where;                 // workload file:line or generator, for messages
};

struct RequestRecord {
  int64_t id = -1;
  int64_t n_prompt_tokens = 0;
  double arrival_s = 0.0;
  double scheduled_s = -1.0;         // first step that computed any of its tokens
  double first_token_s = -1.0;       // end of the step that produced its first output token
  double finish_s = -1.0;            // end of the step that produced its last output token
  std::vector<double> token_times_s; // per output token: end of the step that produced it
  std::vector<int64_t> output_tokens;
  int64_t n_preemptions = 0;         // times its KV blocks were freed and it was recomputed
  int64_t n_prompt_tokens_skipped = 0;  // (token, layer) pairs of its prefill that skipped a block
  int64_t n_output_tokens_skipped = 0;  // (token, layer) pairs of its decode that skipped a block
  std::string finish_reason;         // "length" or "stop" (end token); "error" with `error`
  std::string error;                 // empty when it completed
  bool ok() const { return error.empty() && finish_s >= 0.0; }
};

struct StepRecord {
  int64_t index = 0;
  double start_s = 0.0;
  double duration_s = 0.0;           // device synchronised at the end of the step
  int64_t n_seqs = 0;                // sequences in the step's batch
  int64_t n_prefill_tokens = 0;      // prompt (or recomputed) tokens computed in the step
  int64_t n_decode_tokens = 0;       // one per decoding sequence
  int64_t n_waiting = 0;             // requests arrived and not yet admitted, after scheduling
  int64_t n_preempted = 0;           // sequences pre-empted by this step's scheduling
  int64_t n_kv_blocks_used = 0;      // after the step
  std::vector<int64_t> rows_skipping;  // per layer: tokens of the step that skipped the block
  std::vector<int64_t> rows_mlp_skipping;  // per layer: tokens that ran attention, not the MLP
  int64_t n_forwards = 0;            // forwards of the model (2: decodes and prompt chunks apart)
  bool kv_gathered = false;
  bool fixed_shape = false;          // a fixed-shape decoding step (a CUDA graph replay in graph mode)          // the past K/V were gathered from the pool (else carried over)
  double t_lookup_s = 0.0;           // of duration_s: semantic-cache lookups
  // duration_s cut into its phases, as the host sees them (the device runs behind the host, so
  // device work launched in one phase may be waited for in a later one):
  double t_schedule_s = 0.0;         // scheduling (and the lockstep exchange)
  double t_prepare_s = 0.0;          // the step's inputs and KV layout, the pool's K/V gathered
  double t_forward_s = 0.0;          // the forward (host syncs inside it included)
  double t_finish_s = 0.0;           // K/V written back, the step's tokens read (device waited for)
};

}  // namespace semskip::serve
