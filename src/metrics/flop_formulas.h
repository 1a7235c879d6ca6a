#pragma once
// The per-op FLOP formulas, written once. FlopCounter records executed shapes with them, and
// `semskip info` composes them into per-layer FLOPs per token from a config alone. They
// follow torch.utils.flop_counter: a matmul is 2·m·n·k, bias adds and elementwise ops are free.

#include <cstdint>

namespace semskip::flops {

// [m, k] × [k, n].
inline int64_t matmul(int64_t m, int64_t n, int64_t k) { return 2 * m * n * k; }

// QKᵀ and AV over `pairs` (query, key) products for n_heads heads of head_dim.
inline int64_t attention_products(int64_t n_heads, int64_t head_dim, int64_t pairs) {
  return 2 * matmul(1, 1, head_dim) * n_heads * pairs;
}

// The rotary inverse-frequency × position product, for n_positions positions.
inline int64_t rotary(int64_t head_dim, int64_t n_positions) {
  return matmul(head_dim / 2, n_positions, 1);
}

// Shapes of one decoder layer, independent of where they come from (model config, report).
struct LayerDims {
  int64_t hidden = 0;           // d
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t mlp_intermediate = 0; // dense SwiGLU width; 0 for a MoE layer
  int64_t n_experts = 0;        // 0 for a dense layer
  int64_t top_k = 0;
  int64_t expert_intermediate = 0;
  int64_t shared_intermediate = 0;  // shared expert width (0: none)
  bool shared_gate = false;         // sigmoid gate Linear(d, 1) on the shared expert
};

// FLOPs of one token in one decoder layer, by op group, when it attends to `context` keys.
struct LayerTokenFlops {
  int64_t attn_proj = 0;
  int64_t attn_products = 0;
  int64_t mlp = 0;
  int64_t router = 0;
  int64_t experts = 0;        // top_k routed experts
  int64_t shared_expert = 0;  // shared expert and its gate
  int64_t total() const {
    return attn_proj + attn_products + mlp + router + experts + shared_expert;
  }
};

// SwiGLU (gate, up, down) for `tokens` rows of width d into `intermediate`.
inline int64_t swiglu(int64_t tokens, int64_t hidden, int64_t intermediate) {
  return 2 * matmul(tokens, intermediate, hidden) + matmul(tokens, hidden, intermediate);
}

LayerTokenFlops layer_token_flops(const LayerDims& dims, int64_t context);

}  // namespace semskip::flops
