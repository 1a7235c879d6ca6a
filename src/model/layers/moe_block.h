#pragma once
// Mixture-of-experts feed-forward (Qwen2-MoE, Mixtral), split at the points where an
// expert-parallel all-to-all goes:
//   route -> dispatch -> gather_rows -> [all-to-all] -> experts_forward -> [all-to-all] -> combine
// plus shared_expert (Qwen2-MoE, with its sigmoid gate). Routing is Hugging Face's: softmax of
// the router logits in fp32, top-k, renormalised over the k iff norm_topk_prob.

#include <cstdint>
#include <optional>
#include <vector>

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/layers/linear.h"
#include "model/layers/swiglu_mlp.h"

namespace semskip {

struct Routing {
  at::Tensor topk_ids;       // int64 [N, k], by descending routing weight
  at::Tensor topk_weights;   // compute dtype [N, k]
  at::Tensor router_logits;  // compute dtype [N, E]
};

// The (token, slot) pairs of a Routing grouped by expert, in expert order, stable within one.
struct ExpertDispatch {
  at::Tensor token_index;       // int64 [N·k]: the token of each pair
  at::Tensor weight;            // compute dtype [N·k]: its routing weight
  std::vector<int64_t> counts;  // host [E]: pairs routed to each expert, in order (order_pairs: empty)
  int64_t n_tokens = 0;         // N
};

class MoeBlock {
 public:
  Linear router;                     // [E, d], no bias
  std::vector<SwiGluMlp> experts;    // E routed experts
  int64_t top_k = 0;
  bool norm_topk_prob = false;
  std::optional<SwiGluMlp> shared;   // Qwen2-MoE shared expert
  Linear shared_gate;                // [1, d]; weight undefined when the shared expert is ungated
  // Every routed expert's weights in one tensor, when this process holds them all (see
  // stack_experts): [E, 2·width, d] (gate rows, then up rows) and [E, d, width]. The experts'
  // own weights are views of them. Undefined: not stacked.
  at::Tensor stacked_gate_up;
  at::Tensor stacked_down;

  int64_t n_experts() const { return static_cast<int64_t>(experts.size()); }
  // Whether this process holds expert e's weights (all do, except with expert-parallel weights,
  // ModelOptions::experts), and how many it holds.
  bool holds(int64_t e) const { return experts[static_cast<size_t>(e)].down_proj.weight.defined(); }
  int64_t n_held() const;

  // x [N, d] -> routing of each row.
  Routing route(const at::Tensor& x, FlopCounter* flops = nullptr, int layer = FlopCounter::kNoLayer) const;
  ExpertDispatch dispatch(const Routing& routing) const;
  // The same order, token_index and weight, without the host copy of the counts (empty).
  ExpertDispatch order_pairs(const Routing& routing) const;
  // x [N, d] -> the rows of every routed pair, grouped by expert: [N·k, d].
  at::Tensor gather_rows(const at::Tensor& x, const ExpertDispatch& plan) const;
  // Expert e on its rows x_rows [n, d] -> [n, d] (unweighted).
  at::Tensor expert_forward(int64_t e, const at::Tensor& x_rows, FlopCounter* flops = nullptr,
                            int layer = FlopCounter::kNoLayer) const;
  // Rows grouped by expert (counts[e] rows for expert e, in order) -> expert outputs, same order.
  at::Tensor experts_forward(const at::Tensor& x_rows, const std::vector<int64_t>& counts,
                             FlopCounter* flops = nullptr, int layer = FlopCounter::kNoLayer) const;
  // Σ over a token's pairs of weight · output: y_rows [N·k, d] -> [N, d].
  at::Tensor combine(const at::Tensor& y_rows, const ExpertDispatch& plan) const;
  // sigmoid(shared_gate(x)) · shared(x) for x [N, d]; undefined when there is no shared expert.
  at::Tensor shared_expert(const at::Tensor& x, FlopCounter* flops = nullptr,
                           int layer = FlopCounter::kNoLayer) const;

  // Stacks every routed expert's weights (stacked_gate_up, stacked_down) and re-points the
  // experts to their rows, so no memory is duplicated. Does nothing unless every expert is
  // held, fused (gate_up_proj) and bias-free.
  void stack_experts();
  bool stacked() const { return stacked_gate_up.defined(); }
  // Everything after routing with shapes that depend only on N and no host synchronisation,
  // so that it can be captured in a CUDA graph: x [N, d] -> [N, d], the forward_routed result
  // up to summation order. Needs stacked(). Three ways:
  //   grouped  where grouped_available(x): forward_grouped;
  //   gathered (3·N·k < E): each (row, slot) pair's expert weights gathered by index from the
  //            stacks (index_select on the device) and applied by batched matmuls, N·k experts
  //            read twice and written once;
  //   dense    every expert on every row, weighted by the routing (zero for the experts a row
  //            does not route to): two batched matmuls over the stacks, each expert read once,
  //            which a step of many rows does anyway; E/k times the routed FLOPs.
  // FLOPs are not counted (the fixed-shape decode that uses it counts none).
  at::Tensor forward_fixed(const at::Tensor& x, const Routing& routing) const;

  // Whether forward_grouped can run on x: stacked weights, bf16 on a CUDA device of compute
  // capability 9 or 10 (where LibTorch's grouped matmul has its fused kernels; elsewhere it
  // would copy the group offsets to the host), LibTorch 2.9 or later.
  bool grouped_available(const at::Tensor& x) const;
  // Everything after routing with the rows grouped by expert on the device and each projection
  // one grouped matmul over the stacked weights (at::_grouped_mm, group offsets on the device):
  // every expert read once, in place, routed FLOPs only, no host synchronisation. The
  // forward_routed result up to summation order; FLOPs those of the routed pairs, as
  // experts_forward charges them. Needs grouped_available(x).
  at::Tensor forward_grouped(const at::Tensor& x, const Routing& routing, FlopCounter* flops = nullptr,
                             int layer = FlopCounter::kNoLayer) const;
  // forward_grouped without the shared expert: its routed term.
  at::Tensor grouped_routed_term(const at::Tensor& x, const Routing& routing, FlopCounter* flops = nullptr,
                                 int layer = FlopCounter::kNoLayer) const;

  // The routed term alone, on one process: the routing-weighted sum of the top-k routed
  // experts, x [N, d] -> [N, d] (everything after routing but the shared expert; what
  // target=routed skips); forward_grouped's where it is available.
  at::Tensor routed_term(const at::Tensor& x, const Routing& routing, FlopCounter* flops = nullptr,
                         int layer = FlopCounter::kNoLayer) const;
  // Everything after routing, on one process: x [N, d] -> [N, d], routed_term + shared_expert.
  at::Tensor forward_routed(const at::Tensor& x, const Routing& routing, FlopCounter* flops = nullptr,
                            int layer = FlopCounter::kNoLayer) const;
  // x [..., d] -> [..., d]; the routing is returned through `routing_out` when given.
  at::Tensor forward(const at::Tensor& x, FlopCounter* flops = nullptr, int layer = FlopCounter::kNoLayer,
                     Routing* routing_out = nullptr) const;

  int64_t n_params() const;  // held parameters
  // Parameters a token uses: router, top_k routed experts, shared expert and gate.
  int64_t n_params_active() const;
};

}  // namespace semskip
