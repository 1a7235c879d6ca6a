#pragma once
// Block influence (ShortGPT): BI_l = 1 − cos(h_in, h_out) of block l, averaged over tokens.
// Small BI means the block barely turns the residual stream.

#include <ATen/ATen.h>

namespace semskip {

// states: [n_layers + 1, N, d] residual streams (index 0 the embeddings); returns fp64
// [n_layers] mean BI over the N tokens.
at::Tensor block_influence(const at::Tensor& states);

// Relative size of each block's update per token: ‖h_out − h_in‖ / ‖h_in‖, fp32
// [n_layers, ...] for states [n_layers + 1, ...].
at::Tensor relative_update(const at::Tensor& states);

}  // namespace semskip
