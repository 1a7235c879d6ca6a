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

#include <cstdint>
#include <optional>
#include <string>

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
std::string fixed_decode_unsupported(const Transformer& model, const KvCache& cache);

// Up to n_steps greedy steps after `first` int64 [B] (the prefill's argmax, on the model's
// device), `cache` holding the prompts (grown first when n_steps more slots do not fit). With
// `eos_token_id`, stops once every row has produced it (checked every kFixedDecodeEosCheck
// steps, so up to that many steps more than the eager loop, whose outputs are dropped the
// same way). The cache's length grows by the steps run. `graph` needs a CUDA device.
// semskip::Error when fixed_decode_unsupported says why, or a position passes the model's limit.
FixedDecodeResult decode_fixed(const Transformer& model, KvCache& cache, const at::Tensor& first, int64_t n_steps,
                               bool graph, std::optional<int64_t> eos_token_id);

}  // namespace semskip
