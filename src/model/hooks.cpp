#include "model/hooks.h"

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

namespace {
constexpr int64_t kPoints = static_cast<int64_t>(HookPoint::kCount);
}

const char* hook_point_name(HookPoint p) {
  switch (p) {
    case HookPoint::resid_pre: return "hook_resid_pre";
    case HookPoint::attn_out: return "hook_attn_out";
    case HookPoint::resid_mid: return "hook_resid_mid";
    case HookPoint::mlp_out: return "hook_mlp_out";
    case HookPoint::resid_post: return "hook_resid_post";
    case HookPoint::expert_indices: return "mlp.hook_expert_indices";
    case HookPoint::expert_weights: return "mlp.hook_expert_weights";
    case HookPoint::router_logits: return "mlp.hook_router_logits";
    case HookPoint::kCount: break;
  }
  SEMSKIP_ASSERT(false);
}

bool is_read_only(HookPoint p) {
  return p == HookPoint::expert_indices || p == HookPoint::expert_weights || p == HookPoint::router_logits;
}

std::string hook_name(int64_t layer, HookPoint p) {
  return fmt::format("blocks.{}.{}", layer, hook_point_name(p));
}

HookSite HookSet::parse(const std::string& name) {
  const std::string prefix = "blocks.";
  if (starts_with(name, prefix)) {
    const size_t dot = name.find('.', prefix.size());
    if (dot != std::string::npos) {
      const std::string layer_str = name.substr(prefix.size(), dot - prefix.size());
      const std::string point_str = name.substr(dot + 1);
      for (int64_t p = 0; p < kPoints; ++p) {
        if (point_str != hook_point_name(static_cast<HookPoint>(p))) continue;
        const int64_t layer = parse_int(layer_str, fmt::format("hook name '{}'", name));
        SEMSKIP_THROW_IF_NOT_MSG(layer >= 0, "hook name '{}': negative layer", name);
        return HookSite{layer, static_cast<HookPoint>(p)};
      }
    }
  }
  SEMSKIP_THROW_MSG("hook name '{}' is not blocks.<layer>.<point> with point one of hook_resid_pre, "
                    "hook_attn_out, hook_resid_mid, hook_mlp_out, hook_resid_post, "
                    "mlp.hook_expert_indices, mlp.hook_expert_weights, mlp.hook_router_logits",
                    name);
}

void HookSet::add(const std::string& name, HookFn fn) {
  const HookSite site = parse(name);
  add(site.layer, site.point, std::move(fn));
}

void HookSet::add(int64_t layer, HookPoint point, HookFn fn) {
  SEMSKIP_THROW_IF_NOT_MSG(layer >= 0 && point != HookPoint::kCount && fn, "hook {}: invalid site or empty function",
                           layer);
  const size_t slot = static_cast<size_t>(layer * kPoints + static_cast<int64_t>(point));
  if (hooks_.size() <= slot) hooks_.resize(slot + 1);
  hooks_[slot].push_back(std::move(fn));
  ++n_hooks_;
}

void HookSet::clear() {
  hooks_.clear();
  n_hooks_ = 0;
}

bool HookSet::has(int64_t layer, HookPoint point) const {
  const size_t slot = static_cast<size_t>(layer * kPoints + static_cast<int64_t>(point));
  return slot < hooks_.size() && !hooks_[slot].empty();
}

at::Tensor HookSet::run(int64_t layer, HookPoint point, at::Tensor activation) const {
  const HookSite site{layer, point};
  for (const HookFn& fn : hooks_[static_cast<size_t>(layer * kPoints + static_cast<int64_t>(point))]) {
    std::optional<at::Tensor> out = fn(activation, site);
    if (!out) continue;
    const std::string name = hook_name(layer, point);
    SEMSKIP_THROW_IF_NOT_MSG(!is_read_only(point), "hook {} is read-only: it may not return a tensor",
                             name);
    SEMSKIP_THROW_IF_NOT_MSG(out->defined() && out->sizes() == activation.sizes() &&
                                 out->scalar_type() == activation.scalar_type() &&
                                 out->device() == activation.device(),
                             "hook {}: the replacement must have the activation's shape {}, dtype {} and device",
                             name, fmt::join(activation.sizes().vec(), "x"), c10::toString(activation.scalar_type()));
    activation = std::move(*out);
  }
  return activation;
}

}  // namespace semskip
