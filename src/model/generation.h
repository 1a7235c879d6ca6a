#pragma once
// Greedy decoding of a batch of prompts of different lengths: prompts are left-padded into one
// batch, prefilled together, then decoded one token per step with the KV cache.

#include <cstdint>
#include <optional>
#include <vector>

#include "metrics/flop_counter.h"
#include "model/hooks.h"
#include "model/transformer.h"

namespace semskip {

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  std::optional<int64_t> eos_token_id;  // a sequence stops after producing it (kept in its output)
  int64_t pad_token_id = 0;             // id fed at padding slots (never attended to)
  const HookSet* hooks = nullptr;
  FlopCounter* flops = nullptr;
  // Expert parallelism: every rank of the group must decode the same number of steps.
  MoeExecutor* moe_executor = nullptr;
};

struct GenerateResult {
  std::vector<std::vector<int64_t>> tokens;  // per prompt: the generated continuation
  int64_t n_tokens_prompt = 0;               // prompt tokens, padding excluded
  int64_t n_tokens_gen = 0;                  // generated tokens, over all prompts
  int64_t n_decode_steps = 0;
  double t_prefill_s = 0.0;                  // wall-clock of the prefill forward (device synchronised)
  double t_decode_s = 0.0;                   // wall-clock of all decode steps
};

// semskip::Error on an empty batch or an empty prompt.
GenerateResult generate_greedy(const Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                               const GenerateOptions& options);

}  // namespace semskip
