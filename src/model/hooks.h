#pragma once
// TransformerLens-style hook points. A hook reads an activation and may return a replacement
// of the same shape and dtype (or nothing, to leave it as is). With no hook registered at a
// point the forward pays one array lookup there.
//
// Names, as TransformerLens spells them:
//   blocks.{l}.hook_resid_pre         residual stream entering block l        [B, T, d]
//   blocks.{l}.hook_attn_out          attention output (after o_proj)          [B, T, d]
//   blocks.{l}.hook_resid_mid         residual after the attention add        [B, T, d]
//   blocks.{l}.hook_mlp_out           MLP / MoE output                         [B, T, d]
//   blocks.{l}.hook_resid_post        residual stream leaving block l          [B, T, d]
//   blocks.{l}.mlp.hook_expert_indices  MoE top-k expert ids, read-only    int64 [B, T, k]
//   blocks.{l}.mlp.hook_expert_weights  MoE top-k routing weights, read-only     [B, T, k]
//   blocks.{l}.mlp.hook_router_logits   MoE router logits, read-only             [B, T, E]

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace semskip {

enum class HookPoint {
  resid_pre,
  attn_out,
  resid_mid,
  mlp_out,
  resid_post,
  expert_indices,
  expert_weights,
  router_logits,
  kCount
};

// Points whose hooks may only read (MoE routing): a returned tensor is an error.
bool is_read_only(HookPoint p);

const char* hook_point_name(HookPoint p);  // "hook_resid_pre", ..., "mlp.hook_expert_indices"
std::string hook_name(int64_t layer, HookPoint p);  // "blocks.{layer}.<point>"

struct HookSite {
  int64_t layer = 0;
  HookPoint point = HookPoint::resid_pre;
};

using HookFn = std::function<std::optional<at::Tensor>(const at::Tensor& activation, const HookSite& site)>;

class HookSet {
 public:
  // semskip::Error when `name` is not a hook name of the grammar above.
  void add(const std::string& name, HookFn fn);
  void add(int64_t layer, HookPoint point, HookFn fn);
  void clear();
  bool empty() const { return n_hooks_ == 0; }

  bool has(int64_t layer, HookPoint point) const;
  // Runs the hooks of (layer, point) in registration order, each on the previous one's result.
  // A replacement must have the activation's shape, dtype and device (semskip::Error otherwise);
  // read-only points refuse replacements.
  at::Tensor run(int64_t layer, HookPoint point, at::Tensor activation) const;

  static HookSite parse(const std::string& name);

 private:
  std::vector<std::vector<HookFn>> hooks_;  // [layer · kCount + point] -> hooks in order
  int64_t n_hooks_ = 0;
};

// Applies `hooks` at (layer, point) when there are any; the cheap path of every call site.
inline at::Tensor apply_hook(const HookSet* hooks, int64_t layer, HookPoint point, at::Tensor x) {
  if (hooks == nullptr || !hooks->has(layer, point)) return x;
  return hooks->run(layer, point, std::move(x));
}

}  // namespace semskip
