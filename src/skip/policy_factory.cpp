// make_policy: descriptor string → SkipPolicy. The grammar of each policy is documented in
// its header (baseline_policies.h, residual_policy.h, cascade_policy.h, plan_policy.h).
#include "core/error.h"
#include "skip/state_io.h"
#include "skip/baseline_policies.h"
#include "skip/cascade_policy.h"
#include "skip/plan_policy.h"
#include "skip/residual_policy.h"

namespace semskip {

void SkipPolicy::save_state(StateWriter& w) const { w.tag(describe()); }

void SkipPolicy::load_state(StateReader& r) { r.expect_tag(describe()); }

const char* kv_mode_name(KvMode m) {
  switch (m) {
    case KvMode::mask: return "mask";
    case KvMode::exact: return "exact";
    case KvMode::propagate: break;
  }
  return "propagate";
}

std::unique_ptr<SkipPolicy> make_policy(const std::string& descriptor, const PolicyEnv& env) {
  SEMSKIP_ASSERT(env.n_layers > 0 && env.hidden > 0);
  Descriptor d = Descriptor::parse(descriptor);
  const int64_t n_layers = env.n_layers;
  const int64_t hidden = env.hidden;
  const std::string& name = d.name();
  if (name == "none") return std::make_unique<NonePolicy>(d);
  if (name == "static") return std::make_unique<StaticPolicy>(d, n_layers, env.moe_layers);
  if (name == "random") return std::make_unique<RandomPolicy>(d, n_layers, env.seed, env.moe_layers);
  if (name == "oracle") return std::make_unique<OraclePolicy>(d, n_layers);
  if (name == "residual") return std::make_unique<ResidualPolicy>(d, env, n_layers, hidden);
  if (name == "cascade") return std::make_unique<CascadePolicy>(d, env, n_layers, hidden);
  if (name == "plan") return std::make_unique<PlanPolicy>(d, env, n_layers, hidden);
  SEMSKIP_THROW_MSG("policy descriptor '{}': unknown policy '{}' (expected none, static, random, oracle, "
                    "residual, cascade or plan)", descriptor, name);
}

}  // namespace semskip
