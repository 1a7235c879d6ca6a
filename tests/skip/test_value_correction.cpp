// The low-rank value correction (skip/value_correction.h) against maps known by construction.
#include <gtest/gtest.h>

#include "core/error.h"
#include "metrics/flop_counter.h"
#include "skip/residual_policy.h"
#include "skip/step_context.h"
#include "skip/value_correction.h"

using namespace semskip;

TEST(ValueCorrection, FitRecoversALowRankLinearMap) {
  at::manual_seed(3);
  const int64_t d = 8, D = 12, n = 400;
  const at::Tensor a = at::matmul(at::randn({d, 2}), at::randn({2, D}));  // rank 2
  const at::Tensor x = at::randn({n, d});
  const at::Tensor y = at::matmul(x, a) + 3.0 + 1e-4 * at::randn({n, D});  // an offset the correction ignores
  ValueCorrection c(2, 1e-9, d, D);
  EXPECT_FALSE(c.ready());
  c.fit(x, y);
  ASSERT_TRUE(c.ready());
  const at::Tensor h1 = at::randn({5, d}), h2 = at::randn({5, d});
  FlopCounter f;
  const at::Tensor diff = c.apply(h1, &f, 1) - c.apply(h2, nullptr, 1);
  EXPECT_TRUE(at::allclose(diff, at::matmul(h1 - h2, a), 1e-3, 1e-3));
  EXPECT_EQ(f.by_group(OpGroup::correction), 2 * 5 * (d * 2 + 2 * D));
  EXPECT_EQ(f.total_model(), 0);  // an overhead, not the model's
  // Rank 1 keeps the leading direction only: it cannot reproduce a rank-2 map.
  ValueCorrection c1(1, 1e-9, d, D);
  c1.fit(x, y);
  EXPECT_FALSE(at::allclose(c1.apply(h1, nullptr, 1) - c1.apply(h2, nullptr, 1), at::matmul(h1 - h2, a), 1e-2, 1e-2));
  EXPECT_THROW(ValueCorrection(9, 0.01, d, D), Error);
  EXPECT_THROW(ValueCorrection(2, 0.0, d, D), Error);
}

TEST(ValueCorrection, AHitAddsTheChangeOfTheUpdateWithTheState) {
  // Calibration where the update of blocks 2..3 is linear in h_1: h_3 − h_1 = h_1·A.
  at::manual_seed(5);
  const int64_t L = 6, d = 8, n = 300;
  const at::Tensor a = 0.5 * at::randn({d, d});
  at::Tensor states = at::randn({L + 1, n, d});
  states[2] = at::randn({n, d});
  states[4] = states[2] + at::matmul(states[2], a);
  PolicyEnv env;
  env.n_layers = L;
  env.hidden = d;
  ResidualPolicy p(Descriptor::parse("residual:p=1,r=3,tau=0.5,corr=8,ridge=1e-9"), env, L, d);
  EXPECT_TRUE(p.needs_calibration());
  EXPECT_FALSE(p.needs_calibration_mlp_out());  // target=block: the updates come from the states
  p.calibrate({states});
  EXPECT_FALSE(p.needs_calibration());
  const at::Tensor hp = at::randn({1, 1, d});
  const auto ctx = [&] { return StepContext(L, d, at::ones({1, 1}, at::kBool), {0}, true); };
  StepContext c1 = ctx();
  p.begin_step(c1);
  p.after_layer(1, hp, c1);
  p.after_layer(3, hp + at::matmul(hp, a), c1);  // a miss: its exact update is stored
  p.end_step(c1);
  // A nearby state hits the entry; its update is h·A, not the neighbour's.
  const at::Tensor h2 = hp + 0.2 * at::randn({1, 1, d});
  StepContext c2 = ctx();
  p.begin_step(c2);
  p.after_layer(1, h2, c2);
  ASSERT_TRUE(c2.skip_block(2).all().item<bool>());
  EXPECT_TRUE(at::allclose(c2.jump(3, h2.options()), at::matmul(h2, a), 1e-3, 1e-3));
  EXPECT_FALSE(at::allclose(c2.jump(3, h2.options()), at::matmul(hp, a), 1e-2, 1e-2));
  p.end_step(c2);
  EXPECT_THROW(ResidualPolicy(Descriptor::parse("residual:p=1,r=3,tau=0.5,ridge=0.1"), env, L, d), Error);
  EXPECT_THROW(ResidualPolicy(Descriptor::parse("residual:p=1,r=3,tau=0.5,corr=9"), env, L, d), Error);
  EXPECT_TRUE(ResidualPolicy(Descriptor::parse("residual:p=1,r=3,tau=0.5,target=mlp,corr=4"), env, L, d)
                  .needs_calibration_mlp_out());
}
