#include "model/generation.h"

#include <algorithm>

#include "core/error.h"
#include "metrics/timing.h"

namespace semskip {

PaddedBatch left_pad(const std::vector<std::vector<int64_t>>& prompts, int64_t pad_id, at::Device device) {
  const int64_t batch = static_cast<int64_t>(prompts.size());
  int64_t max_len = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SEMSKIP_THROW_IF_NOT_MSG(!prompts[i].empty(), "prompt {} is empty", i);
    max_len = std::max<int64_t>(max_len, static_cast<int64_t>(prompts[i].size()));
  }
  PaddedBatch pb;
  at::Tensor ids = at::full({batch, max_len}, pad_id, at::kLong);  // int64 [B, T], built on the host
  at::Tensor valid = at::zeros({batch, max_len}, at::kBool);      // bool [B, T]
  for (int64_t b = 0; b < batch; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const int64_t len = static_cast<int64_t>(p.size()), pad = max_len - len;
    pb.padded = pb.padded || pad > 0;
    ids[b].narrow(0, pad, len).copy_(at::tensor(p, at::kLong));
    valid[b].narrow(0, pad, len).fill_(true);
  }
  pb.ids = ids.to(device);
  pb.valid = valid.to(device);
  return pb;
}

std::vector<std::vector<int64_t>> decode_greedy(const at::Tensor& first, const GreedyLoop& loop, int64_t* n_steps) {
  const int64_t batch = first.size(0);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(batch));
  std::vector<bool> done(static_cast<size_t>(batch), false);
  at::Tensor next = first;  // int64 [B] on the device
  int64_t steps = 0;
  for (int64_t t = 0; t < loop.max_new_tokens; ++t) {
    // The one host read of a step: it also waits for the step's device work.
    const at::Tensor host = next.to(at::kCPU, at::kLong).contiguous();
    const int64_t* p = host.data_ptr<int64_t>();
    std::vector<uint8_t> live(static_cast<size_t>(batch), 0);
    bool any_live = false;
    for (int64_t b = 0; b < batch; ++b) {
      if (done[static_cast<size_t>(b)]) continue;
      out[static_cast<size_t>(b)].push_back(p[b]);
      if (loop.eos_token_id && p[b] == *loop.eos_token_id) {
        done[static_cast<size_t>(b)] = true;
      } else {
        live[static_cast<size_t>(b)] = 1;
        any_live = true;
      }
    }
    if (t + 1 == loop.max_new_tokens) break;
    if (!(loop.go_on ? loop.go_on(any_live) : any_live)) break;
    ++steps;
    if (!any_live) {
      if (loop.idle_step) loop.idle_step();
      continue;
    }
    const at::Tensor live_t =
        at::from_blob(live.data(), {batch, 1}, at::kBool).to(first.device(), /*non_blocking=*/false, /*copy=*/true);
    next = loop.step(next.view({batch, 1}), live_t).select(1, 0).argmax(-1);
  }
  if (n_steps) *n_steps = steps;
  return out;
}

GenerateResult generate_greedy(const Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                               const GenerateOptions& options) {
  SEMSKIP_THROW_IF_NOT_MSG(!prompts.empty(), "generate: no prompts");
  SEMSKIP_THROW_IF_NOT_MSG(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  const int64_t batch = static_cast<int64_t>(prompts.size());
  GenerateResult result;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SEMSKIP_THROW_IF_NOT_MSG(!prompts[i].empty(), "generate: prompt {} is empty", i);
    result.n_tokens_prompt += static_cast<int64_t>(prompts[i].size());
  }
  result.tokens.resize(prompts.size());
  if (options.max_new_tokens == 0) return result;
  const PaddedBatch pb = left_pad(prompts, options.pad_token_id, model.device());
  const int64_t max_len = pb.ids.size(1);

  KvCache cache = model.make_kv_cache(batch, max_len + options.max_new_tokens);
  ForwardOptions fo;
  fo.kv_cache = &cache;
  fo.hooks = options.hooks;
  fo.flops = options.flops;
  fo.moe_executor = options.moe_executor;
  fo.last_token_logits = true;
  if (pb.padded) fo.attention_mask = pb.valid;

  // The clock starts on an idle device; the loop's host read of each step's tokens waits.
  synchronize(model.device());
  Stopwatch clock;
  const at::Tensor first = model.forward(pb.ids, fo).select(1, 0).argmax(-1);  // int64 [B]
  synchronize(model.device());
  result.t_prefill_s = clock.seconds();

  fo.attention_mask = at::Tensor();
  GreedyLoop loop;
  loop.max_new_tokens = options.max_new_tokens;
  loop.eos_token_id = options.eos_token_id;
  // Stopped rows keep being computed (their outputs are dropped): the step's shape stays fixed.
  loop.step = [&](const at::Tensor& tokens, const at::Tensor&) { return model.forward(tokens, fo); };
  clock.restart();
  result.tokens = decode_greedy(first, loop, &result.n_decode_steps);
  synchronize(model.device());
  result.t_decode_s = clock.seconds();
  for (const auto& t : result.tokens) result.n_tokens_gen += static_cast<int64_t>(t.size());
  return result;
}

}  // namespace semskip
