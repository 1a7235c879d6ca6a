#include "model/generation.h"

#include <algorithm>

#include "core/error.h"
#include "metrics/timing.h"
#include "model/fixed_decode.h"

namespace semskip {

const char* decode_mode_name(DecodeMode m) {
  switch (m) {
    case DecodeMode::eager: return "eager";
    case DecodeMode::fixed: return "fixed";
    case DecodeMode::graph: return "graph";
    case DecodeMode::auto_: return "auto";
  }
  return "?";
}

DecodeMode parse_decode_mode(const std::string& text, const std::string& what) {
  for (DecodeMode m : {DecodeMode::eager, DecodeMode::fixed, DecodeMode::graph, DecodeMode::auto_}) {
    if (text == decode_mode_name(m)) return m;
  }
  SEMSKIP_THROW_MSG("{}: unknown decode mode '{}' (eager, fixed, graph, auto)", what, text);
}

namespace {

// The mode a generation runs: auto resolved; fixed / graph refused with the reason when they
// cannot run.
DecodeMode resolve_decode_mode(const Transformer& model, const GenerateOptions& o, const KvCache& cache) {
  if (o.decode == DecodeMode::eager) return DecodeMode::eager;
  std::string why;
  if (o.hooks && !o.hooks->empty()) why = "hooks need the eager forward";
  else if (o.flops) why = "FLOP counting needs the eager forward";
  else if (o.moe_executor) why = "expert parallelism needs the eager forward";
  else why = fixed_decode_unsupported(model, cache);
  if (o.decode == DecodeMode::auto_) return why.empty() && model.device().is_cuda() ? DecodeMode::graph : DecodeMode::eager;
  SEMSKIP_THROW_IF_NOT_MSG(why.empty(), "generate: decode mode {}: {}; use eager", decode_mode_name(o.decode), why);
  SEMSKIP_THROW_IF_NOT_MSG(o.decode != DecodeMode::graph || model.device().is_cuda(),
                           "generate: decode mode graph needs a CUDA device (the model is on {}); use fixed or eager",
                           model.device().str());
  return o.decode;
}

}  // namespace

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

  // Refused before any work when the decode mode cannot run.
  result.decode = resolve_decode_mode(model, options, cache);
  // The clock starts on an idle device; the loop's host read of each step's tokens waits.
  synchronize(model.device());
  Stopwatch clock;
  const at::Tensor first = model.forward(pb.ids, fo).select(1, 0).argmax(-1);  // int64 [B]
  synchronize(model.device());
  result.t_prefill_s = clock.seconds();

  clock.restart();
  if (result.decode != DecodeMode::eager) {
    const FixedDecodeResult fr = decode_fixed(model, cache, first, options.max_new_tokens - 1,
                                              result.decode == DecodeMode::graph, options.eos_token_id);
    result.t_capture_s = fr.t_capture_s;
    result.n_decode_steps = fr.n_steps;
    // Each row's tokens up to and including its first eos, as the eager loop keeps them.
    const at::Tensor host = fr.tokens.contiguous();
    const int64_t width = host.size(1);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t* row = host.data_ptr<int64_t>() + b * width;
      auto& out = result.tokens[static_cast<size_t>(b)];
      for (int64_t t = 0; t < width; ++t) {
        out.push_back(row[t]);
        if (options.eos_token_id && row[t] == *options.eos_token_id) break;
      }
    }
  } else {
    fo.attention_mask = at::Tensor();
    GreedyLoop loop;
    loop.max_new_tokens = options.max_new_tokens;
    loop.eos_token_id = options.eos_token_id;
    // Stopped rows keep being computed (their outputs are dropped): the step's shape stays fixed.
    loop.step = [&](const at::Tensor& tokens, const at::Tensor&) { return model.forward(tokens, fo); };
    result.tokens = decode_greedy(first, loop, &result.n_decode_steps);
  }
  synchronize(model.device());
  result.t_decode_s = clock.seconds();
  for (const auto& t : result.tokens) result.n_tokens_gen += static_cast<int64_t>(t.size());
  return result;
}

}  // namespace semskip
