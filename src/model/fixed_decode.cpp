#include "model/fixed_decode.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>

#include <fmt/format.h>

#if SEMSKIP_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
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
  at::Tensor out;        // int64 [B, max_steps]: each step's tokens, column by column
  at::Tensor key_slots;  // int64 [1, capacity]: 0, 1, ..., capacity - 1
};

void fixed_step(const Transformer& model, KvCache& cache, StepState& s, const std::vector<bool>& run) {
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
  for (const DecoderLayer& layer : model.layers())
    if (run[static_cast<size_t>(layer.index)]) x = layer.forward(x, ctx);
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

std::string fixed_decode_unsupported(const Transformer& model, const KvCache& cache,
                                     const std::vector<int64_t>& bypass) {
  if (cache.batch() == 0) return "the batch is empty";
  for (int64_t l : bypass)
    if (l < 0 || l >= model.n_layers())
      return fmt::format("bypassed layer {} is outside the model's 0..{}", l, model.n_layers() - 1);
  for (const DecoderLayer& l : model.layers()) {
    if (std::find(bypass.begin(), bypass.end(), l.index) != bypass.end()) continue;
    if (l.is_moe() && !l.moe->stacked())
      return fmt::format("the experts of MoE layer {} are not all held by this process (expert parallelism)",
                         l.index);
    if (cache.has_hidden(l.index))
      return fmt::format("the KV cache hides keys at layer {} (written by a planned forward)", l.index);
  }
  return {};
}

struct FixedDecoder::State {
  StepState s;
#if SEMSKIP_CUDA
  std::optional<c10::cuda::CUDAStream> stream;
  std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
};

FixedDecoder::FixedDecoder(const Transformer& model, KvCache& cache, const at::Tensor& first, int64_t max_steps,
                           bool graph, const std::vector<int64_t>& bypass)
    : model_(model), cache_(cache), max_steps_(max_steps), graph_(graph), s_(std::make_unique<State>()) {
  const std::string why = fixed_decode_unsupported(model, cache, bypass);
  SEMSKIP_THROW_IF_NOT_MSG(why.empty(), "fixed-shape decoding: {}", why);
  run_.assign(static_cast<size_t>(model.n_layers()), true);
  for (int64_t l : bypass) run_[static_cast<size_t>(l)] = false;
  SEMSKIP_THROW_IF_NOT_MSG(max_steps >= 1, "fixed-shape decoding: steps must be >= 1, got {}", max_steps);
  const at::Device device = model.device();
  SEMSKIP_THROW_IF_NOT_MSG(!graph || device.is_cuda(),
                           "decode mode graph needs a CUDA device (the model is on {}); use fixed or eager",
                           device.str());
#if !SEMSKIP_CUDA
  SEMSKIP_THROW_IF_NOT_MSG(!graph, "decode mode graph: this build has no CUDA support");
#endif
  const int64_t batch = cache.batch();
  SEMSKIP_THROW_IF_NOT_MSG(first.dim() == 1 && first.size(0) == batch,
                           "fixed-shape decoding: first tokens must be [B] = [{}]", batch);
  start_ = cache.length(0);
  for (int64_t l = 1; l < cache.n_layers(); ++l) SEMSKIP_ASSERT(cache.length(l) == start_);
  // The new slots are valid (set_valid grows the cache when they do not fit): the capacity,
  // and so every shape of the step, is fixed from here on.
  cache.set_valid(start_, max_steps, {});
  const at::Tensor before = cache.n_valid_before(start_);  // int64 [B]: the next position of each row
  const int64_t last = before.max().item<int64_t>() + max_steps - 1, limit = model.position_limit();
  SEMSKIP_THROW_IF_NOT_MSG(last < limit,
                           "{}: decoding {} steps reaches position {}, but the model allows positions 0..{} only; "
                           "ModelOptions::max_model_len raises the limit",
                           model.config().source, max_steps, last, limit - 1);
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  StepState& st = s_->s;
  st.tokens = first.to(at::kLong).view({batch, 1}).clone();
  st.positions = before.view({batch, 1}).clone();
  st.slot = at::full({1}, start_, long_opts);
  st.column = at::zeros({1}, long_opts);
  st.out = at::zeros({batch, max_steps}, long_opts);
  st.key_slots = at::arange(cache.capacity(), long_opts).unsqueeze(0);
#if SEMSKIP_CUDA
  if (graph) s_->stream = c10::cuda::getStreamFromPool(false, device.index());
#endif
}

FixedDecoder::~FixedDecoder() = default;

const at::Tensor& FixedDecoder::outputs() const { return s_->s.out; }

at::Tensor FixedDecoder::step(bool wait) {
  SEMSKIP_THROW_IF_NOT_MSG(!finished_ && steps_ < max_steps_, "fixed-shape decoding: step {} of {} (finished: {})",
                           steps_ + 1, max_steps_, finished_);
  StepState& st = s_->s;
  if (!graph_) {
    fixed_step(model_, cache_, st, run_);
  } else {
#if SEMSKIP_CUDA
    // The decoder's stream runs after the caller's work so far (an event on the caller's stream).
    at::cuda::CUDAEvent ready;
    ready.record(c10::cuda::getCurrentCUDAStream(model_.device().index()));
    ready.block(*s_->stream);
    const c10::cuda::CUDAStreamGuard guard(*s_->stream);
    if (steps_ == 0) {
      fixed_step(model_, cache_, st, run_);  // a real step, which also sets up cuBLAS on the stream
    } else {
      if (!s_->graph) {
        s_->graph = std::make_unique<at::cuda::CUDAGraph>();
        const Stopwatch clock;
        s_->graph->capture_begin();
        fixed_step(model_, cache_, st, run_);  // recorded, not run
        s_->graph->capture_end();
        t_capture_s_ = clock.seconds();
      }
      s_->graph->replay();
    }
#endif
  }
  ++steps_;
  if (wait) this->wait();
  return st.out.narrow(1, steps_ - 1, 1);
}

void FixedDecoder::wait() const {
#if SEMSKIP_CUDA
  if (s_->stream) s_->stream->synchronize();
#endif
}

void FixedDecoder::finish() {
  if (finished_) return;
  wait();
  finished_ = true;
  cache_.extend(steps_);
  for (size_t l = 0; l < run_.size(); ++l)
    if (!run_[l]) cache_.hide(static_cast<int64_t>(l), start_, steps_);
}

FixedDecodeResult decode_fixed(const Transformer& model, KvCache& cache, const at::Tensor& first, int64_t n_steps,
                               bool graph, std::optional<int64_t> eos_token_id,
                               const std::vector<int64_t>& bypass) {
  const std::string why = fixed_decode_unsupported(model, cache, bypass);
  SEMSKIP_THROW_IF_NOT_MSG(why.empty(), "fixed-shape decoding: {}", why);
  SEMSKIP_THROW_IF_NOT_MSG(n_steps >= 0, "fixed-shape decoding: steps must be >= 0, got {}", n_steps);
  const int64_t batch = cache.batch();
  SEMSKIP_THROW_IF_NOT_MSG(first.dim() == 1 && first.size(0) == batch,
                           "fixed-shape decoding: first tokens must be [B] = [{}]", batch);
  const at::Tensor first_col = first.to(at::kLong).view({batch, 1});
  FixedDecodeResult result;
  if (n_steps == 0 || (eos_token_id && all_ended(first_col, 1, *eos_token_id))) {
    result.tokens = first_col.to(at::kCPU);
    return result;
  }
  FixedDecoder dec(model, cache, first, n_steps, graph, bypass);
  while (dec.steps() < n_steps) {
    dec.step(/*wait=*/false);
    if (eos_token_id && dec.steps() % kFixedDecodeEosCheck == 0) {
      dec.wait();
      if (all_ended(at::cat({first_col, dec.outputs()}, 1), 1 + dec.steps(), *eos_token_id)) break;
    }
  }
  dec.finish();
  result.n_steps = dec.steps();
  result.t_capture_s = dec.t_capture_s();
  result.tokens = at::cat({first_col, dec.outputs().narrow(1, 0, dec.steps())}, 1).to(at::kCPU);
  return result;
}

}  // namespace semskip
