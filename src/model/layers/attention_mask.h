#pragma once
// Which keys each query may attend to, built once per forward and shared by every layer.
// Queries and keys are identified by their *slot*: the column of the key axis (the KV-cache
// column when a cache is used). Query q may see key k iff k <= slot(q) and key k is valid
// (not padding); a query always sees its own slot, so padding rows never divide by zero.

#include <cstdint>

#include <ATen/ATen.h>

namespace semskip {

struct AttentionMask {
  enum class Kind {
    none,      // every query sees every key (e.g. one decode step without padding)
    causal,    // slot(q) = n_keys - n_queries + q, no padding: plain causal, bottom-right aligned
    explicit_, // `additive` holds the mask
  };
  Kind kind = Kind::none;
  at::Tensor additive;       // compute dtype [B, 1, Tq, Tk]: 0 where allowed, -inf where not (explicit_ only)
  int64_t n_queries = 0;     // Tq
  int64_t n_keys = 0;        // Tk
  int64_t pairs_dense = 0;   // B·Tq·Tk
  int64_t pairs_causal = 0;  // (query, key) pairs the mask lets through, summed over the batch
  // int64 scalar on the mask's device: pairs_causal not yet read to the host (from_slots with
  // `defer_pairs`); whoever built the mask charges it, so attend() does not.
  at::Tensor pairs_pending;

  // Queries at slots [n_keys - n_queries, n_keys) of B sequences without padding.
  static AttentionMask causal_block(int64_t batch, int64_t n_queries, int64_t n_keys);
  // The same mask (the fused causal kernels' case) charged for the `counted` queries only,
  // bool [B, Tq] (undefined: all), n_counted of them: an execution plan's gathered rows when
  // every key of the layer is valid and visible. The count runs on the device; it is read to
  // the host only when `count_pairs` and not `defer_pairs` (then pairs_pending holds it).
  static AttentionMask causal_counted(int64_t batch, int64_t n_queries, int64_t n_keys, const at::Tensor& counted,
                                      int64_t n_counted, bool count_pairs, bool defer_pairs);
  // General case. q_slots int64 [B, Tq] (or [Tq], the same for all sequences);
  // key_valid bool [B, Tk] (undefined: all valid). `dtype` and the device of q_slots are those
  // of the additive mask. Counting pairs_causal reads the mask back to the host; it is done
  // only when `count_pairs`, and left on the device (pairs_pending) when `defer_pairs`.
  // `counted` bool [B, Tq] (undefined: all) restricts the count and pairs_dense to the
  // queries that really run (an execution plan's gathered rows; the others are computed and
  // dropped).
  static AttentionMask from_slots(const at::Tensor& q_slots, const at::Tensor& key_valid,
                                  int64_t batch, int64_t n_keys, at::ScalarType dtype,
                                  bool count_pairs, const at::Tensor& counted = {},
                                  int64_t n_counted = -1, bool defer_pairs = false);
};

}  // namespace semskip
