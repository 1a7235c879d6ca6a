#include "model/generation.h"

#include <algorithm>

#include "core/error.h"
#include "metrics/timing.h"

namespace semskip {

GenerateResult generate_greedy(const Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                               const GenerateOptions& options) {
  SEMSKIP_THROW_IF_NOT_MSG(!prompts.empty(), "generate: no prompts");
  SEMSKIP_THROW_IF_NOT_MSG(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  const int64_t batch = static_cast<int64_t>(prompts.size());
  int64_t max_len = 0;
  GenerateResult result;
  result.tokens.resize(prompts.size());
  for (const auto& p : prompts) {
    SEMSKIP_THROW_IF_NOT_MSG(!p.empty(), "generate: empty prompt");
    max_len = std::max<int64_t>(max_len, static_cast<int64_t>(p.size()));
    result.n_tokens_prompt += static_cast<int64_t>(p.size());
  }
  if (options.max_new_tokens == 0) return result;

  // Left padding keeps every sequence's newest token in the last column.
  at::Tensor ids = at::full({batch, max_len}, options.pad_token_id, at::kLong);  // int64 [B, T]
  at::Tensor valid = at::zeros({batch, max_len}, at::kBool);                    // bool [B, T]
  bool padded = false;
  for (int64_t b = 0; b < batch; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const int64_t len = static_cast<int64_t>(p.size());
    const int64_t pad = max_len - len;
    padded = padded || pad > 0;
    ids[b].narrow(0, pad, len).copy_(at::tensor(p, at::kLong));
    valid[b].narrow(0, pad, len).fill_(true);
  }

  KvCache cache = model.make_kv_cache(batch, max_len + options.max_new_tokens);
  ForwardOptions fo;
  fo.kv_cache = &cache;
  fo.hooks = options.hooks;
  fo.flops = options.flops;
  fo.moe_executor = options.moe_executor;
  fo.last_token_logits = true;
  if (padded) fo.attention_mask = valid;

  std::vector<bool> done(static_cast<size_t>(batch), false);
  int64_t n_done = 0;
  // Appends each sequence's argmax; the host copy also synchronises the device for timing.
  const auto take = [&](const at::Tensor& logits) {
    const at::Tensor next = logits.select(1, 0).argmax(-1).to(at::kCPU);  // int64 [B]
    const int64_t* p = next.data_ptr<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
      if (done[static_cast<size_t>(b)]) continue;
      result.tokens[static_cast<size_t>(b)].push_back(p[b]);
      ++result.n_tokens_gen;
      if ((options.eos_token_id && p[b] == *options.eos_token_id) ||
          static_cast<int64_t>(result.tokens[static_cast<size_t>(b)].size()) == options.max_new_tokens) {
        done[static_cast<size_t>(b)] = true;
        ++n_done;
      }
    }
    return next.unsqueeze(1);  // int64 [B, 1]
  };

  // The clock starts on an idle device; take() ends each step with a host copy, which waits.
  synchronize(model.device());
  Stopwatch clock;
  at::Tensor next = take(model.forward(ids, fo));
  result.t_prefill_s = clock.seconds();

  fo.attention_mask = at::Tensor();
  clock.restart();
  while (n_done < batch) {
    next = take(model.forward(next, fo));
    ++result.n_decode_steps;
  }
  synchronize(model.device());
  result.t_decode_s = clock.seconds();
  return result;
}

}  // namespace semskip
