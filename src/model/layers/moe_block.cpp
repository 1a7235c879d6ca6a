#include "model/layers/moe_block.h"

#include <algorithm>

#include <torch/version.h>

#if SEMSKIP_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include "core/error.h"

// LibTorch's grouped matmul (at::_grouped_mm) with fused bf16 kernels on sm90 / sm100.
#if SEMSKIP_CUDA && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9))
#define SEMSKIP_GROUPED_MM 1
#else
#define SEMSKIP_GROUPED_MM 0
#endif

namespace semskip {

Routing MoeBlock::route(const at::Tensor& x, FlopCounter* flops, int layer) const {
  SEMSKIP_ASSERT(x.dim() == 2);
  Routing r;
  r.router_logits = router.forward(x, flops, layer, OpGroup::router);  // [N, E]
  const at::Tensor probs = at::softmax(r.router_logits, -1, at::kFloat);
  auto [weights, ids] = at::topk(probs, top_k, -1);  // fp32 [N, k], int64 [N, k]
  if (norm_topk_prob) weights = weights / weights.sum(-1, /*keepdim=*/true);
  r.topk_ids = ids;
  r.topk_weights = weights.to(r.router_logits.scalar_type());
  return r;
}

ExpertDispatch MoeBlock::order_pairs(const Routing& routing) const {
  ExpertDispatch plan;
  plan.n_tokens = routing.topk_ids.size(0);
  const at::Tensor flat_ids = routing.topk_ids.reshape({-1});  // [N·k], token-major
  const at::Tensor order = std::get<1>(at::sort(flat_ids, /*stable=*/true, 0, false));
  plan.token_index = at::div(order, top_k, "floor");
  plan.weight = routing.topk_weights.reshape({-1}).index_select(0, order);
  return plan;
}

ExpertDispatch MoeBlock::dispatch(const Routing& routing) const {
  ExpertDispatch plan = order_pairs(routing);
  const at::Tensor counts = at::bincount(routing.topk_ids.reshape({-1}), {}, n_experts()).to(at::kCPU).to(at::kLong);
  plan.counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + n_experts());
  return plan;
}

at::Tensor MoeBlock::gather_rows(const at::Tensor& x, const ExpertDispatch& plan) const {
  return x.index_select(0, plan.token_index);
}

at::Tensor MoeBlock::expert_forward(int64_t e, const at::Tensor& x_rows, FlopCounter* flops, int layer) const {
  SEMSKIP_ASSERT(e >= 0 && e < n_experts());
  SEMSKIP_THROW_IF_NOT_MSG(holds(e),
                           "MoE: expert {} is not held by this process (expert-parallel weights, --ep); its rows "
                           "must go to its owner through ExpertParallel",
                           e);
  return experts[static_cast<size_t>(e)].forward(x_rows, flops, layer, OpGroup::experts);
}

at::Tensor MoeBlock::experts_forward(const at::Tensor& x_rows, const std::vector<int64_t>& counts,
                                     FlopCounter* flops, int layer) const {
  SEMSKIP_ASSERT(static_cast<int64_t>(counts.size()) == n_experts());
  std::vector<at::Tensor> outs;
  int64_t offset = 0;
  for (int64_t e = 0; e < n_experts(); ++e) {
    const int64_t n = counts[static_cast<size_t>(e)];
    if (n == 0) continue;
    outs.push_back(expert_forward(e, x_rows.narrow(0, offset, n), flops, layer));
    offset += n;
  }
  SEMSKIP_ASSERT(offset == x_rows.size(0));
  if (outs.empty()) return at::empty_like(x_rows);
  return outs.size() == 1 ? outs.front() : at::cat(outs, 0);
}

at::Tensor MoeBlock::combine(const at::Tensor& y_rows, const ExpertDispatch& plan) const {
  // index_add accumulates in row order, i.e. for each token in expert order, as the reference.
  at::Tensor out = at::zeros({plan.n_tokens, y_rows.size(1)}, y_rows.options());
  return out.index_add_(0, plan.token_index, y_rows * plan.weight.unsqueeze(1));
}

at::Tensor MoeBlock::shared_expert(const at::Tensor& x, FlopCounter* flops, int layer) const {
  if (!shared) return {};
  at::Tensor y = shared->forward(x, flops, layer, OpGroup::shared_expert);
  if (shared_gate.weight.defined()) {
    y = at::sigmoid(shared_gate.forward(x, flops, layer, OpGroup::shared_expert)) * y;
  }
  return y;
}

at::Tensor MoeBlock::routed_term(const at::Tensor& x, const Routing& routing, FlopCounter* flops, int layer) const {
  if (x.size(0) > 0 && grouped_available(x)) return grouped_routed_term(x, routing, flops, layer);
  const ExpertDispatch plan = dispatch(routing);
  return combine(experts_forward(gather_rows(x, plan), plan.counts, flops, layer), plan);
}

at::Tensor MoeBlock::forward_routed(const at::Tensor& x, const Routing& routing, FlopCounter* flops,
                                    int layer) const {
  at::Tensor out = routed_term(x, routing, flops, layer);
  if (shared) out = out + shared_expert(x, flops, layer);
  return out;
}

void MoeBlock::stack_experts() {
  if (experts.empty() || stacked()) return;
  for (const SwiGluMlp& e : experts) {
    if (!e.gate_up_proj.weight.defined() || e.gate_up_proj.bias.defined() || e.down_proj.bias.defined()) return;
  }
  std::vector<at::Tensor> gate_up, down;
  for (const SwiGluMlp& e : experts) {
    gate_up.push_back(e.gate_up_proj.weight);
    down.push_back(e.down_proj.weight);
  }
  stacked_gate_up = at::stack(gate_up, 0);  // [E, 2·width, d]
  stacked_down = at::stack(down, 0);        // [E, d, width]
  for (size_t i = 0; i < experts.size(); ++i) {
    SwiGluMlp& e = experts[i];
    const int64_t width = e.intermediate_size();
    e.gate_up_proj.weight = stacked_gate_up[static_cast<int64_t>(i)];
    e.gate_proj.weight = e.gate_up_proj.weight.narrow(0, 0, width);
    e.up_proj.weight = e.gate_up_proj.weight.narrow(0, width, width);
    e.down_proj.weight = stacked_down[static_cast<int64_t>(i)];
  }
}

bool MoeBlock::grouped_available(const at::Tensor& x) const {
#if SEMSKIP_GROUPED_MM
  if (!stacked() || !x.is_cuda() || x.scalar_type() != at::kBFloat16) return false;
  const int major = at::cuda::getDeviceProperties(x.device().index())->major;
  return major == 9 || major == 10;
#else
  (void)x;
  return false;
#endif
}

at::Tensor MoeBlock::forward_grouped(const at::Tensor& x, const Routing& routing, FlopCounter* flops,
                                     int layer) const {
  at::Tensor out = grouped_routed_term(x, routing, flops, layer);
  if (shared) out = out + shared_expert(x, flops, layer);
  return out;
}

at::Tensor MoeBlock::grouped_routed_term(const at::Tensor& x, const Routing& routing, FlopCounter* flops,
                                         int layer) const {
  SEMSKIP_ASSERT(grouped_available(x) && x.dim() == 2);
#if SEMSKIP_GROUPED_MM
  const int64_t d = x.size(1), width = stacked_down.size(2), pairs = routing.topk_ids.numel();
  if (flops) {
    flops->add_matmul(layer, OpGroup::experts, pairs, 2 * width, d);
    flops->add_matmul(layer, OpGroup::experts, pairs, d, width);
  }
  // The pairs in expert order, and each expert's end offset among them, counted on the
  // device (int32 [E]; bincount would read its size on the host).
  const ExpertDispatch plan = order_pairs(routing);
  const at::Tensor flat_ids = routing.topk_ids.reshape({pairs});
  const at::Tensor counts = at::zeros({n_experts()}, flat_ids.options()).index_add_(0, flat_ids, at::ones_like(flat_ids));
  const at::Tensor offs = counts.cumsum(0).to(at::kInt);
  const at::Tensor rows = gather_rows(x, plan);  // [P, d]
  // [E, out, in] stacks, transposed to [E, in, out]: the column-major operand the kernel takes.
  const at::Tensor gate_up = at::_grouped_mm(rows, stacked_gate_up.transpose(1, 2), offs);  // [P, 2·width]
  const at::Tensor h = at::silu(gate_up.narrow(-1, 0, width)) * gate_up.narrow(-1, width, width);
  const at::Tensor y = at::_grouped_mm(h, stacked_down.transpose(1, 2), offs);  // [P, d]
  return combine(y, plan);
#else
  (void)routing, (void)flops, (void)layer;
  SEMSKIP_THROW_MSG("MoE: this build has no grouped matmul");
#endif
}

at::Tensor MoeBlock::forward_fixed(const at::Tensor& x, const Routing& routing) const {
  SEMSKIP_ASSERT(stacked() && x.dim() == 2);
  if (grouped_available(x)) return forward_grouped(x, routing);
  const int64_t n = x.size(0), d = x.size(1), width = stacked_down.size(2), k = routing.topk_ids.size(1);
  at::Tensor out;
  if (3 * n * k < n_experts()) {
    const at::Tensor ids = routing.topk_ids.reshape({n * k});                               // [P]
    const at::Tensor xr = x.unsqueeze(1).expand({n, k, d}).reshape({n * k, 1, d});          // [P, 1, d]
    const at::Tensor gate_up = at::bmm(xr, stacked_gate_up.index_select(0, ids).transpose(1, 2));  // [P, 1, 2·width]
    const at::Tensor h = at::silu(gate_up.narrow(-1, 0, width)) * gate_up.narrow(-1, width, width);
    const at::Tensor y = at::bmm(h, stacked_down.index_select(0, ids).transpose(1, 2)).view({n, k, d});
    // Σ over a row's k pairs of weight · output: [N, 1, k] × [N, k, d].
    out = at::bmm(routing.topk_weights.unsqueeze(1), y).squeeze(1);
  } else {
    // Each row's weight for every expert, zero where it does not route: [N, E].
    const at::Tensor w =
        at::zeros({n, n_experts()}, x.options()).scatter_(1, routing.topk_ids, routing.topk_weights);
    const at::Tensor gate_up = at::matmul(x.unsqueeze(0), stacked_gate_up.transpose(1, 2));  // [E, N, 2·width]
    const at::Tensor h = at::silu(gate_up.narrow(-1, 0, width)) * gate_up.narrow(-1, width, width);
    const at::Tensor y = at::bmm(h, stacked_down.transpose(1, 2));  // [E, N, d]
    // Σ_e w[n, e] · y[e, n, :], one batched product per row: [N, 1, E] × [N, E, d].
    out = at::bmm(w.unsqueeze(1), y.transpose(0, 1)).squeeze(1);
  }
  if (shared) out = out + shared_expert(x);
  return out;
}

at::Tensor MoeBlock::forward(const at::Tensor& x, FlopCounter* flops, int layer, Routing* routing_out) const {
  const at::Tensor flat = x.reshape({-1, x.size(-1)});
  Routing routing = route(flat, flops, layer);
  at::Tensor out = forward_routed(flat, routing, flops, layer).view(x.sizes());
  if (routing_out) *routing_out = std::move(routing);
  return out;
}

int64_t MoeBlock::n_params() const {
  int64_t n = router.n_params();
  for (const SwiGluMlp& e : experts) n += e.n_params();
  if (shared) n += shared->n_params();
  if (shared_gate.weight.defined()) n += shared_gate.n_params();
  return n;
}

int64_t MoeBlock::n_held() const {
  int64_t n = 0;
  for (int64_t e = 0; e < n_experts(); ++e) n += holds(e) ? 1 : 0;
  return n;
}

int64_t MoeBlock::n_params_active() const {
  int64_t n = n_params();
  // With expert-parallel weights only some experts are held: the active count is per held expert.
  for (int64_t e = 0; e < n_experts(); ++e) {
    if (!holds(e)) continue;
    n -= (n_held() - std::min(top_k, n_held())) * experts[static_cast<size_t>(e)].n_params();
    break;
  }
  return n;
}

}  // namespace semskip
