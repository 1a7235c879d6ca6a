#pragma once
// Fixed-shape greedy decoding: every decode step of a batch has the same shapes and reads no
// value on the host, so on a CUDA device one step is captured in a CUDA graph and every later
// step replays it (one launch per step instead of about twenty per layer).
//
// DESIGN. A step's inputs and outputs live in tensors of fixed address: the B tokens fed, their
// RoPE positions, the cache slot they are written to and the output column their successors
// land in. The step advances all four on the device. Attention writes each layer's K/V at that
// slot (KvCache::write_slot) and attends over the cache's whole preallocated capacity under a
// mask built on the device from the padding marks and the slot, so slots past it (zero or
// stale) get zero probability. MoE layers run their experts from stacked weights, the routed
// ones gathered by index or all of them weighted by the routing (MoeBlock::forward_fixed),
// which needs no per-expert counts on the host. The argmax is taken
// on the device and written both to the output and to the next step's input. The layers are
// the model's own (DecoderLayer::forward with LayerContext::fixed_slot set): this is the
// eager loop (decode_greedy over Transformer::forward) with other shapes, and gives its
// tokens up to summation order (masked keys add exact zeros; the MoE sums its experts in
// another order; fp32: the same greedy tokens, as the tests hold).
//
// Two ways to run it:
//   fixed  each step run eagerly, on any device: what the graph replays, testable on CPU.
//   graph  CUDA: the first step runs eagerly on a side stream (a real step, which also sets up
//          cuBLAS on that stream), the second is captured, and it and every later step are
//          replays. The capture's time is part of the decode time and also reported alone.
// Hooks, FLOP counting and expert parallelism need host work per step and are refused.
//
// Whole-layer skipping: layers named in `bypass` (skipped by every token in every step, as a
// static policy's are; SkipPolicy::bypass_layers) are left out of the step, so the graph holds
// the kernels of the layers that run only. Their keys stay hidden (a planned prefill hid them
// and finish() hides the decoded slots), as the eager planned loop leaves them.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/kv_cache.h"
#include "model/transformer.h"

namespace semskip {

struct FixedDecodeResult {
  at::Tensor tokens;         // int64 [B, 1 + n_steps] on the host: `first`, then each step's token
  int64_t n_steps = 0;       // steps run
  double t_capture_s = 0.0;  // graph: recording the step (no device work), seconds
};

// Steps between the host's checks of whether every row has produced the end-of-sequence id.
constexpr int64_t kFixedDecodeEosCheck = 8;

// Empty when decode_fixed can run `model` over `cache`; otherwise why not (an expert not held
// or not stacked, keys hidden by a planned forward, an empty batch).
std::string fixed_decode_unsupported(const Transformer& model, const KvCache& cache,
                                     const std::vector<int64_t>& bypass = {});

// One fixed-shape greedy step at a time, for a caller that reads every step's tokens (the
// serving loop): the cache gets room for max_steps more slots (all marked valid: every row
// decodes every step) and is written at one slot per step; `graph` captures the second step
// and replays it from then on (the first runs eagerly), all on a stream of its own, ordered
// after the caller's work by a device synchronisation. finish() extends the cache's length by
// the steps run. The cache and the model must outlive the decoder. semskip::Error as
// decode_fixed.
class FixedDecoder {
 public:
  FixedDecoder(const Transformer& model, KvCache& cache, const at::Tensor& first, int64_t max_steps, bool graph,
               const std::vector<int64_t>& bypass = {});
  ~FixedDecoder();
  FixedDecoder(const FixedDecoder&) = delete;
  FixedDecoder& operator=(const FixedDecoder&) = delete;

  // Runs the next step and returns its tokens, int64 [B, 1] on the device (a view of
  // outputs()). With `wait` the step has finished when the call returns (the decoder's stream
  // synchronised); else wait() before reading them. At most max_steps calls.
  at::Tensor step(bool wait = true);
  void wait() const;
  // int64 [B, max_steps] on the device: column i holds step i's tokens.
  const at::Tensor& outputs() const;
  int64_t steps() const { return steps_; }
  int64_t max_steps() const { return max_steps_; }
  // The cache slot the last step wrote (start + steps − 1).
  int64_t last_slot() const { return start_ + steps_ - 1; }
  double t_capture_s() const { return t_capture_s_; }
  // The cache's length grows by the steps run; no step after it.
  void finish();

 private:
  struct State;
  const Transformer& model_;
  KvCache& cache_;
  std::vector<bool> run_;  // per layer: part of the step (false: bypassed)
  int64_t start_ = 0, max_steps_ = 0, steps_ = 0;
  bool graph_ = false, finished_ = false;
  double t_capture_s_ = 0.0;
  std::unique_ptr<State> s_;
};

// Up to n_steps greedy steps after `first` int64 [B] (the prefill's argmax, on the model's
// device), `cache` holding the prompts (grown first when n_steps more slots do not fit). With
// `eos_token_id`, stops once every row has produced it (checked every kFixedDecodeEosCheck
// steps, so up to that many steps more than the eager loop, whose outputs are dropped the
// same way). The cache's length grows by the steps run. `graph` needs a CUDA device.
// semskip::Error when fixed_decode_unsupported says why, or a position passes the model's limit.
FixedDecodeResult decode_fixed(const Transformer& model, KvCache& cache, const at::Tensor& first, int64_t n_steps,
                               bool graph, std::optional<int64_t> eos_token_id,
                               const std::vector<int64_t>& bypass = {});

}  // namespace semskip
