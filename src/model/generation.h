#pragma once
// Greedy decoding of a batch of prompts of different lengths: prompts are left-padded into one
// batch (left_pad), prefilled together, then decoded one token per step with the KV cache
// (decode_greedy). The skipping evaluator's continuation runs the same loop with its own step.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/hooks.h"
#include "model/transformer.h"

namespace semskip {

// How the decode steps run (model/fixed_decode.h): eager (Transformer::forward per step, the
// general path), fixed (fixed shapes, run eagerly), graph (fixed shapes, one CUDA graph
// replayed per step), or auto (graph on a CUDA device when nothing needs per-step host work —
// hooks, FLOP counting, expert parallelism — else eager).
enum class DecodeMode { eager, fixed, graph, auto_ };
const char* decode_mode_name(DecodeMode m);
// "eager" | "fixed" | "graph" | "auto"; anything else throws naming `what` (e.g. "option --decode-mode").
DecodeMode parse_decode_mode(const std::string& text, const std::string& what);

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  std::optional<int64_t> eos_token_id;  // a sequence stops after producing it (kept in its output)
  int64_t pad_token_id = 0;             // id fed at padding slots (never attended to)
  const HookSet* hooks = nullptr;
  FlopCounter* flops = nullptr;
  // Expert parallelism: every rank of the group must decode the same number of steps.
  MoeExecutor* moe_executor = nullptr;
  DecodeMode decode = DecodeMode::eager;
};

struct GenerateResult {
  std::vector<std::vector<int64_t>> tokens;  // per prompt: the generated continuation
  int64_t n_tokens_prompt = 0;               // prompt tokens, padding excluded
  int64_t n_tokens_gen = 0;                  // generated tokens, over all prompts
  int64_t n_decode_steps = 0;
  double t_prefill_s = 0.0;                  // wall-clock of the prefill forward (device synchronised)
  double t_decode_s = 0.0;                   // wall-clock of all decode steps
  DecodeMode decode = DecodeMode::eager;     // how they ran (auto resolved)
  double t_capture_s = 0.0;                  // graph: recording the step, part of t_decode_s
};

// Prompts left-padded into one batch, so every sequence's newest token is in the last column.
struct PaddedBatch {
  at::Tensor ids;       // int64 [B, T], pad_id at padding
  at::Tensor valid;     // bool [B, T], false at padding
  bool padded = false;  // whether any prompt is shorter than T
};
// semskip::Error naming the prompt's index when one is empty.
PaddedBatch left_pad(const std::vector<std::vector<int64_t>>& prompts, int64_t pad_id, at::Device device);

// The decode loop. Each step takes the device argmax of the previous logits and reads the
// B tokens to the host once (to stop rows at eos); nothing else leaves the device.
struct GreedyLoop {
  int64_t max_new_tokens = 32;           // tokens per row, the first (from the prefill) included
  std::optional<int64_t> eos_token_id;   // a row stops after producing it (kept in its output)
  // One decode step: tokens int64 [B, 1] and live bool [B, 1] (false: the row has stopped; it
  // may be computed or not), both on the device -> logits [B, 1, V].
  std::function<at::Tensor(const at::Tensor& tokens, const at::Tensor& live)> step;
  // Before each step, with whether a row here is live: whether to take it. Null: iff live.
  // (Lockstep over ranks: whether any rank has a live row.)
  std::function<bool(bool)> go_on;
  // Taken instead of `step` when go_on agreed but no row here is live (joins collectives).
  std::function<void()> idle_step;
};

// Greedy continuation from `first` int64 [B] (the prefill's argmax, on the device): per row
// the generated tokens. `n_steps`, when given, receives the decode steps taken.
std::vector<std::vector<int64_t>> decode_greedy(const at::Tensor& first, const GreedyLoop& loop,
                                                int64_t* n_steps = nullptr);

// semskip::Error on an empty batch or an empty prompt.
GenerateResult generate_greedy(const Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                               const GenerateOptions& options);

}  // namespace semskip
