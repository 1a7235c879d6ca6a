#pragma once
// One pre-norm decoder block: h += attn(norm(h)); h += mlp(norm(h)), where mlp is a dense
// SwiGLU or a MoE block. Its two sub-blocks are usable on their own (a skip engine that
// replaces only the MLP of some tokens runs attention_block for all and mlp_block for some).

#include <cstdint>
#include <optional>

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/hooks.h"
#include "model/kv_cache.h"
#include "model/layers/attention.h"
#include "model/layers/attention_mask.h"
#include "model/layers/moe_block.h"
#include "model/layers/rms_norm.h"
#include "model/layers/rotary.h"
#include "model/layers/swiglu_mlp.h"
#include "model/moe_executor.h"

namespace semskip {

// What every layer of one forward shares (built by Transformer::make_context).
struct LayerContext {
  RopeTable rope;             // cos/sin of the forward's tokens, [B, T, head_dim]
  AttentionMask mask;         // the forward's queries against all keys of the layer
  KvCache* kv_cache = nullptr;  // null: keys/values are this forward's tokens only
  const HookSet* hooks = nullptr;
  FlopCounter* flops = nullptr;
  MoeExecutor* moe_executor = nullptr;  // null: routed experts run here (MoeBlock::forward_routed)
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

  // resid [B, T, d] -> attention output [B, T, d] (before the residual add). Appends this
  // layer's K/V to ctx.kv_cache when there is one.
  at::Tensor attention_block(const at::Tensor& resid, const LayerContext& ctx) const;
  // resid_mid [B, T, d] -> MLP / MoE output [B, T, d]; runs the MoE routing hooks.
  at::Tensor mlp_block(const at::Tensor& resid_mid, const LayerContext& ctx) const;
  // resid_pre [B, T, d] -> resid_post [B, T, d], with every hook point of the block.
  at::Tensor forward(const at::Tensor& resid, const LayerContext& ctx) const;

  int64_t n_params() const;
  int64_t n_params_active() const;  // per token: top_k routed experts only
};

}  // namespace semskip
