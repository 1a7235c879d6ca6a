#include "model/fixed_decode.h"

#include <limits>

#include <fmt/format.h>

#if SEMSKIP_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "core/error.h"
#include "core/timing.h"
#include "metrics/timing.h"

namespace semskip {

namespace {

// The tensors a step reads and advances; their addresses never change (a graph replays them).
struct StepState {
  at::Tensor tokens;     // int64 [B, 1]: this step's input
  at::Tensor positions;  // int64 [B, 1]: their RoPE positions
  at::Tensor slot;       // int64 [1]: the cache slot they are written to
  at::Tensor column;     // int64 [1]: the output column of the token this step produces
  at::Tensor out;        // int64 [B, 1 + n_steps]
  at::Tensor key_slots;  // int64 [1, capacity]: 0, 1, ..., capacity - 1
};

void fixed_step(const Transformer& model, KvCache& cache, StepState& s) {
  const int64_t batch = cache.batch(), cap = cache.capacity();
  LayerContext ctx;
  ctx.kv_cache = &cache;
  ctx.fixed_slot = s.slot;
  ctx.rope = model.rotary().table(s.positions, model.dtype());
  // A query sees the valid slots up to its own: bool [B, capacity], then additive.
  const at::Tensor hidden = cache.valid_slots().logical_and(s.key_slots.le(s.slot)).logical_not();
  ctx.mask.kind = AttentionMask::Kind::explicit_;
  ctx.mask.additive = at::zeros({batch, 1, 1, cap}, model.embed_tokens().options())
                          .masked_fill_(hidden.view({batch, 1, 1, cap}), -std::numeric_limits<double>::infinity());
  ctx.mask.n_queries = 1;
  ctx.mask.n_keys = cap;
  ctx.mask.pairs_dense = batch * cap;
  at::Tensor x = model.embed(s.tokens);
  for (const DecoderLayer& layer : model.layers()) x = layer.forward(x, ctx);
  const at::Tensor next = model.lm_head(model.final_norm(x)).argmax(-1);  // int64 [B, 1]
  s.out.index_copy_(1, s.column, next);
  s.tokens.copy_(next);
  s.positions.add_(1);
  s.slot.add_(1);
  s.column.add_(1);
}

// Whether every row of out's first `n` columns holds eos (one host read).
bool all_ended(const at::Tensor& out, int64_t n, int64_t eos) {
  return out.narrow(1, 0, n).eq(eos).any(1).all().item<bool>();
}

}  // namespace

std::string fixed_decode_unsupported(const Transformer& model, const KvCache& cache) {
  if (cache.batch() == 0) return "the batch is empty";
  for (const DecoderLayer& l : model.layers()) {
    if (l.is_moe() && !l.moe->stacked())
      return fmt::format("the experts of MoE layer {} are not all held by this process (expert parallelism)",
                         l.index);
    if (cache.has_hidden(l.index))
      return fmt::format("the KV cache hides keys at layer {} (written by a planned forward)", l.index);
  }
  return {};
}

FixedDecodeResult decode_fixed(const Transformer& model, KvCache& cache, const at::Tensor& first, int64_t n_steps,
                               bool graph, std::optional<int64_t> eos_token_id) {
  const std::string why = fixed_decode_unsupported(model, cache);
  SEMSKIP_THROW_IF_NOT_MSG(why.empty(), "fixed-shape decoding: {}", why);
  SEMSKIP_THROW_IF_NOT_MSG(n_steps >= 0, "fixed-shape decoding: steps must be >= 0, got {}", n_steps);
  const at::Device device = model.device();
  SEMSKIP_THROW_IF_NOT_MSG(!graph || device.is_cuda(),
                           "decode mode graph needs a CUDA device (the model is on {}); use fixed or eager",
                           device.str());
  const int64_t batch = cache.batch();
  SEMSKIP_THROW_IF_NOT_MSG(first.dim() == 1 && first.size(0) == batch,
                           "fixed-shape decoding: first tokens must be [B] = [{}]", batch);
  const int64_t start = cache.length(0);
  for (int64_t l = 1; l < cache.n_layers(); ++l) SEMSKIP_ASSERT(cache.length(l) == start);

  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  StepState s;
  s.out = at::zeros({batch, 1 + n_steps}, long_opts);
  s.out.select(1, 0).copy_(first);
  FixedDecodeResult result;
  if (n_steps == 0 || (eos_token_id && all_ended(s.out, 1, *eos_token_id))) {
    result.tokens = s.out.narrow(1, 0, 1).to(at::kCPU);
    return result;
  }
  // The new slots are valid (set_valid grows the cache when they do not fit): the capacity,
  // and so every shape of the step, is fixed from here on.
  cache.set_valid(start, n_steps, {});
  const at::Tensor before = cache.n_valid_before(start);  // int64 [B]: the next position of each row
  const int64_t last = before.max().item<int64_t>() + n_steps - 1, limit = model.position_limit();
  SEMSKIP_THROW_IF_NOT_MSG(last < limit,
                           "{}: decoding {} steps reaches position {}, but the model allows positions 0..{} only; "
                           "ModelOptions::max_model_len raises the limit",
                           model.config().source, n_steps, last, limit - 1);
  s.tokens = first.to(at::kLong).view({batch, 1}).clone();
  s.positions = before.view({batch, 1}).clone();
  s.slot = at::full({1}, start, long_opts);
  s.column = at::ones({1}, long_opts);
  s.key_slots = at::arange(cache.capacity(), long_opts).unsqueeze(0);

  int64_t steps = 0;
  const auto check_due = [&] {
    return eos_token_id && steps % kFixedDecodeEosCheck == 0 && all_ended(s.out, 1 + steps, *eos_token_id);
  };
  if (!graph) {
    while (steps < n_steps) {
      fixed_step(model, cache, s);
      ++steps;
      if (check_due()) break;
    }
  } else {
#if SEMSKIP_CUDA
    // Capture needs a stream of its own; it starts after everything before it has finished.
    synchronize(device);
    const c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool(false, device.index());
    const c10::cuda::CUDAStreamGuard guard(stream);
    fixed_step(model, cache, s);
    ++steps;
    if (steps < n_steps && !check_due()) {
      at::cuda::CUDAGraph step_graph;
      const Stopwatch clock;
      step_graph.capture_begin();
      fixed_step(model, cache, s);  // recorded, not run
      step_graph.capture_end();
      result.t_capture_s = clock.seconds();
      while (steps < n_steps) {
        step_graph.replay();
        ++steps;
        if (check_due()) break;
      }
    }
    stream.synchronize();
#else
    SEMSKIP_THROW_MSG("decode mode graph: this build has no CUDA support");
#endif
  }
  cache.extend(steps);
  result.n_steps = steps;
  result.tokens = s.out.narrow(1, 0, 1 + steps).to(at::kCPU);
  return result;
}

}  // namespace semskip
