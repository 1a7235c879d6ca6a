#include "model/layers/attention_mask.h"

#include <limits>

#include "core/error.h"

namespace semskip {

AttentionMask AttentionMask::causal_block(int64_t batch, int64_t n_queries, int64_t n_keys) {
  SEMSKIP_ASSERT(n_queries <= n_keys && n_queries > 0);
  AttentionMask m;
  m.n_queries = n_queries;
  m.n_keys = n_keys;
  m.pairs_dense = batch * n_queries * n_keys;
  // Query q (0-based within the block) sees n_keys - n_queries + q + 1 keys.
  const int64_t past = n_keys - n_queries;
  m.pairs_causal = batch * (n_queries * past + n_queries * (n_queries + 1) / 2);
  m.kind = n_queries == 1 ? Kind::none : Kind::causal;
  return m;
}

AttentionMask AttentionMask::causal_counted(int64_t batch, int64_t n_queries, int64_t n_keys,
                                            const at::Tensor& counted, int64_t n_counted, bool count_pairs,
                                            bool defer_pairs) {
  AttentionMask m = causal_block(batch, n_queries, n_keys);
  if (!counted.defined()) return m;
  SEMSKIP_ASSERT(counted.dim() == 2 && counted.size(0) == batch && counted.size(1) == n_queries);
  m.pairs_dense = n_counted * n_keys;
  m.pairs_causal = 0;
  if (count_pairs) {
    // Query q of a block sees n_keys − n_queries + q + 1 keys.
    const at::Tensor seen = at::arange(n_keys - n_queries + 1, n_keys + 1, counted.options().dtype(at::kLong));
    const at::Tensor pairs = (counted.to(at::kLong) * seen).sum();
    if (defer_pairs) m.pairs_pending = pairs;
    else m.pairs_causal = pairs.item<int64_t>();
  }
  return m;
}

AttentionMask AttentionMask::from_slots(const at::Tensor& q_slots, const at::Tensor& key_valid,
                                        int64_t batch, int64_t n_keys, at::ScalarType dtype,
                                        bool count_pairs, const at::Tensor& counted,
                                        int64_t n_counted, bool defer_pairs) {
  SEMSKIP_ASSERT(q_slots.dim() == 1 || q_slots.dim() == 2);
  const at::Tensor slots = (q_slots.dim() == 1 ? q_slots.unsqueeze(0) : q_slots).unsqueeze(-1);  // [B|1, Tq, 1]
  const at::Tensor keys = at::arange(n_keys, q_slots.options().dtype(at::kLong));               // [Tk]
  at::Tensor allowed = keys <= slots;                                                            // [B|1, Tq, Tk]
  if (key_valid.defined()) {
    SEMSKIP_ASSERT(key_valid.dim() == 2 && key_valid.size(0) == batch && key_valid.size(1) == n_keys);
    allowed = allowed.logical_and(key_valid.unsqueeze(1)).logical_or(keys == slots);
  }
  allowed = allowed.expand({batch, allowed.size(1), n_keys});
  AttentionMask m;
  m.kind = Kind::explicit_;
  m.n_queries = allowed.size(1);
  m.n_keys = n_keys;
  m.pairs_dense = (counted.defined() ? n_counted : batch * m.n_queries) * n_keys;
  if (count_pairs) {
    const at::Tensor pairs = counted.defined() ? allowed.logical_and(counted.unsqueeze(-1)).sum() : allowed.sum();
    if (defer_pairs) m.pairs_pending = pairs;
    else m.pairs_causal = pairs.item<int64_t>();
  }
  const auto opts = q_slots.options().dtype(dtype);
  m.additive = at::where(allowed, at::zeros({}, opts),
                         at::full({}, -std::numeric_limits<double>::infinity(), opts))
                   .unsqueeze(1);  // [B, 1, Tq, Tk]
  return m;
}

}  // namespace semskip
