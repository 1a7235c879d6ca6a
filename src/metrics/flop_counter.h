#pragma once
// Analytic FLOP accounting from the shapes actually executed (docs/architecture.md §5). Every matmul
// is 2·m·n·k. Attention products are recorded under two conventions at once: `dense`
// (every query against the whole key block, as torch.utils.flop_counter counts eager
// attention) and `causal` (only the (query, key) pairs the causal mask lets through), which
// is what experiments report.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace semskip {

enum class OpGroup {
  attn_proj,      // q, k, v, o projections (with bias adds not counted, as FlopCounterMode)
  attn_products,  // QKᵀ and AV
  rotary,         // the inverse-frequency × position matmul, once per forward
  mlp,            // dense SwiGLU: gate, up, down
  router,         // MoE gate logits
  experts,        // routed experts, for the tokens routed to them only
  shared_expert,  // qwen2_moe shared expert and its sigmoid gate
  lm_head,
  key_proj,       // semantic-cache key projection (overhead)
  lookup,         // vector-index search (overhead)
  kv_propagate,   // K/V of skipped layers computed from a substituted state (overhead)
  insert,         // vector-index insertion of admitted cache entries (overhead, index/lookup_cost.h)
  train,          // one-off fitting: index training (IVF / PQ k-means), PCA key projection, value correction (overhead)
  correction,     // the low-rank value correction of cache hits and of inserted values (overhead, skip/value_correction.h)
  kCount
};

enum class AttnConvention { dense, causal };

const char* op_group_name(OpGroup g);
// Overhead groups are costs of skipping, not of the model itself.
bool is_overhead(OpGroup g);

class FlopCounter {
 public:
  // `layer` is the decoder layer index, or kNoLayer for embedding-free global ops
  // (rotary, lm_head, ...).
  static constexpr int kNoLayer = -1;

  void add(int layer, OpGroup group, int64_t flops);
  // 2·m·n·k.
  void add_matmul(int layer, OpGroup group, int64_t m, int64_t n, int64_t k);
  // QKᵀ and AV for n_heads heads of head_dim: `pairs_dense` and `pairs_causal` are the
  // numbers of (query, key) products under each convention.
  void add_attention(int layer, int64_t n_heads, int64_t head_dim, int64_t pairs_dense,
                     int64_t pairs_causal);

  int64_t total(AttnConvention conv = AttnConvention::causal) const;
  int64_t total_model(AttnConvention conv = AttnConvention::causal) const;     // without overheads
  int64_t total_overhead() const;
  int64_t by_group(OpGroup g, AttnConvention conv = AttnConvention::causal) const;
  // Everything recorded under `layer`, overheads included.
  int64_t by_layer(int layer, AttnConvention conv = AttnConvention::causal) const;
  // The model's own operations of `layer` (by_layer without the overhead groups), and its
  // overheads: by_layer = by_layer_model + by_layer_overhead.
  int64_t by_layer_model(int layer, AttnConvention conv = AttnConvention::causal) const;
  int64_t by_layer_overhead(int layer) const;
  // Largest layer index seen + 1.
  int n_layers_seen() const;

  void merge(const FlopCounter& other);
  void reset();

  // Every count as a flat list and back (the checkpoint of `semskip run --resume`):
  // from_flat(c.to_flat()) equals c. semskip::Error when the list is not such a list.
  std::vector<int64_t> to_flat() const;
  static FlopCounter from_flat(const std::vector<int64_t>& flat);

 private:
  using Row = std::array<int64_t, static_cast<size_t>(OpGroup::kCount)>;
  std::map<int, Row> causal_;            // layer -> per-group FLOPs, causal attention
  std::map<int, int64_t> attn_dense_;    // layer -> attention products, dense convention
};

}  // namespace semskip
