#pragma once
// One pre-norm decoder block: h += attn(norm(h)); h += mlp(norm(h)), where mlp is a dense
// SwiGLU or a MoE block. forward() runs every row; forward_planned() runs the rows a LayerPlan
// selects (model/layer_plan.h): the same sub-blocks on gathered rows, scattered back, in the
// forward's RowExec mode (gather, bucket or mask).

#include <cstdint>
#include <optional>
#include <vector>

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/hooks.h"
#include "model/kv_cache.h"
#include "model/layer_plan.h"
#include "model/layers/attention.h"
#include "model/layers/attention_mask.h"
#include "model/layers/moe_block.h"
#include "model/layers/rms_norm.h"
#include "model/layers/rotary.h"
#include "model/layers/swiglu_mlp.h"
#include "model/moe_executor.h"

namespace semskip {

// Attention pairs of one layer counted on the device, charged once per forward (one host read
// for all layers instead of one per layer).
struct PendingPairs {
  int layer = 0;
  int64_t n_heads = 0, head_dim = 0, pairs_dense = 0;
  at::Tensor pairs_causal;  // int64 scalar on the device
};

// What every layer of one forward shares (built by Transformer::make_context).
// The rows one sub-block of a planned layer executes, of the forward's N = B·T flat rows.
struct RowSet {
  int64_t n = 0;      // executed rows (known on the host)
  at::Tensor rows;    // int64 [n], distinct; undefined: all N rows in order (n = N > 0)
  at::Tensor keep;    // bool [n]: executed rows whose results are kept; undefined: all
  at::Tensor member;  // bool [N]: which rows are executed (attention pairs charged); undefined: all
};

struct LayerContext {
  RopeTable rope;             // cos/sin of the forward's tokens, [B, T, head_dim]
  AttentionMask mask;         // the forward's queries against all keys of the layer
  KvCache* kv_cache = nullptr;  // null: keys/values are this forward's tokens only
  const HookSet* hooks = nullptr;
  FlopCounter* flops = nullptr;
  MoeExecutor* moe_executor = nullptr;  // null: routed experts run here (MoeBlock::forward_routed)
  // Execution plans only: the valid rows bool [B, T] (undefined: all), the forward's first
  // slot and where attention pairs counted on the device go (null: counted on the host).
  at::Tensor valid;
  int64_t first_slot = 0;
  RowExec row_exec = RowExec::gather;  // how planned layers execute their rows (ForwardOptions::row_exec)
  std::vector<PendingPairs>* pending_pairs = nullptr;
  // Execution plans: what every layer without skips shares when only padding is left out —
  // the valid rows, int64 [n], and their mask — built by the first such layer.
  mutable at::Tensor valid_rows;
  mutable std::optional<AttentionMask> valid_mask;
  // RowExec::bucket: the valid rows padded to their bucket, shared the same way.
  mutable std::optional<RowSet> valid_bucket;
  // Fixed-shape decoding (model/fixed_decode.h): int64 [1] on the device, the cache slot of
  // this step's one token per row. Set: attention writes K/V there (KvCache::write_slot) and
  // attends over the cache's whole capacity under `mask`, and MoE layers run their experts
  // from the stacked weights (MoeBlock::forward_fixed), so no shape or host value depends on
  // the step.
  at::Tensor fixed_slot;
};

class DecoderLayer {
 public:
  int64_t index = 0;
  RmsNorm input_norm;             // input_layernorm
  Attention attention;            // self_attn
  RmsNorm post_attention_norm;    // post_attention_layernorm
  std::optional<SwiGluMlp> mlp;   // dense layers
  std::optional<MoeBlock> moe;    // MoE layers (exactly one of mlp / moe is set)

  bool is_moe() const { return moe.has_value(); }

  // resid_pre [B, T, d] -> resid_post [B, T, d], with every hook point of the block.
  at::Tensor forward(const at::Tensor& resid, const LayerContext& ctx) const;
  // The block under a LayerPlan: jump added, then only plan.run rows (and, of them, the
  // non-skip_mlp rows for the MLP, or with plan.routed_only for the router and routed experts,
  // the shared expert running on every plan.run row) computed — or, by ctx.row_exec, padded to a bucket (bucket)
  // or every valid row computed and the skipping ones dropped (mask); K/V of the other valid
  // rows propagated or hidden in ctx.kv_cache (required). Hooks: resid_pre, resid_post and the MoE routing points, on
  // the full [B, T, d] streams resp. the routed rows [1, n, k]. `callbacks` receives
  // after_mlp when the plan wants it.
  at::Tensor forward_planned(const at::Tensor& resid, const LayerContext& ctx, const LayerPlan& plan,
                             ExecutionPlan* callbacks) const;

  int64_t n_params() const;
  int64_t n_params_active() const;  // per token: top_k routed experts only

 private:
  // resid [B, T, d] -> attention output [B, T, d] (before the residual add). Appends this
  // layer's K/V to ctx.kv_cache when there is one.
  at::Tensor attention_block(const at::Tensor& resid, const LayerContext& ctx) const;
  // resid_mid [B, T, d] -> MLP / MoE output [B, T, d]; runs the MoE routing hooks. With
  // with_shared false (a MoE layer), the routed term alone, without the shared expert.
  at::Tensor mlp_block(const at::Tensor& resid_mid, const LayerContext& ctx, bool with_shared = true) const;
  // resid_mid [B, T, d] -> the shared expert's gated output [B, T, d] (a MoE layer with one).
  at::Tensor shared_block(const at::Tensor& resid_mid, const LayerContext& ctx) const;
  // The attention of the rows `run` executes over the cache, of h_flat [B·T, d] (h_run: its
  // rows of `run`, [run.n, d]) -> their output [run.n, d] (undefined when run.n = 0); `prop`:
  // rows whose K/V only are computed, from `kv_src` [B·T, d] when defined (uncharged, written
  // after the run rows), else from h_flat; `visible` bool [B, T]: the new slots with keys (undefined: valid). `shared`: the layer's queries and
  // keys may be those of the forward's other such layers (one mask for all). `kept` bool [N]
  // (RowExec::mask; undefined: all): the queries that run; the others attend to every valid key.
  at::Tensor attention_rows(const at::Tensor& h_flat, const at::Tensor& h_run, const RowSet& run, const RowSet& prop,
                            const at::Tensor& kv_src,
                            const at::Tensor& visible,
                            int64_t batch, int64_t n_tokens, const LayerContext& ctx, bool shared,
                            const at::Tensor& kept) const;
  // The mask of this layer when its keys differ from the forward's (hidden slots), else ctx.mask.
  AttentionMask layer_mask(int64_t batch, int64_t n_tokens, const LayerContext& ctx, const at::Tensor& counted,
                           int64_t n_counted) const;
  // RowExec::mask with hidden keys: queries of `kept` bool [B, T] see this layer's keys, the
  // others every valid key (what the full model computes for them before it is dropped).
  AttentionMask mixed_mask(int64_t batch, int64_t n_tokens, const LayerContext& ctx, const at::Tensor& kept,
                           const at::Tensor& counted, int64_t n_counted) const;
};

}  // namespace semskip
