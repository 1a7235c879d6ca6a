// The direct cuBLAS product of torch:flat's matmul path (index/cuda/reduced_gemm.h), against
// scores computed on the CPU in float64 and rounded once to the keys' type. On data whose dot
// products and every partial sum of them are exact even in bf16 (queries: at most 16 entries
// ±1/2; keys: entries in {−4, …, 4} / 8; so sums are multiples of 1/16 of magnitude ≤ 4, 7
// significant bits) the product must match bit for bit, whatever order and precision cuBLAS
// reduces in; on random data it must agree to the rounding of one
// half-precision output plus float32 accumulation. Shapes cover one query, a padded row stride
// past the keys scored (the stride torch:flat uses) and widths that are not multiples of 8.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <string>

#include "index/cuda/reduced_gemm.h"

namespace semskip {
namespace {

at::ScalarType torch_type(cuda::ScoreType t) { return t == cuda::ScoreType::f16 ? at::kHalf : at::kBFloat16; }

class ReducedGemmCuda : public ::testing::TestWithParam<cuda::ScoreType> {
 protected:
  void SetUp() override {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
    ASSERT_TRUE(cuda::has_reduced_gemm()) << "LibTorch's cuBLAS is not in the process";
  }
  // scores [n, ld] of q [n, dim] against keys [ld, dim] (both already in the keys' type).
  at::Tensor product(const at::Tensor& q, const at::Tensor& keys) const {
    const int64_t n = q.size(0), ld = keys.size(0), dim = q.size(1);
    at::Tensor scores = at::full({n, ld}, 7.0, q.options());  // overwritten everywhere
    EXPECT_TRUE(cuda::reduced_gemm(at::cuda::getCurrentCUDABlasHandle(), GetParam(), keys.data_ptr(), q.data_ptr(),
                                   n, ld, dim, scores.data_ptr()));
    return scores.cpu();
  }
  // The float64 product on the CPU, rounded once to the keys' type.
  at::Tensor reference(const at::Tensor& q, const at::Tensor& keys) const {
    return at::mm(q.cpu().to(at::kDouble), keys.cpu().to(at::kDouble).t()).to(torch_type(GetParam()));
  }
};

TEST_P(ReducedGemmCuda, ExactDataMatchBitForBit) {
  const auto gpu = at::TensorOptions().device(at::kCUDA).dtype(torch_type(GetParam()));
  const struct {
    int64_t n, ld, dim;
  } shapes[] = {{1, 1, 16}, {1, 16384, 256}, {128, 16384, 256}, {7, 1000, 96}, {33, 130, 24}, {5, 77, 13}};
  uint64_t seed = 3;
  for (const auto& s : shapes) {
    at::manual_seed(seed++);
    at::Tensor q = at::zeros({s.n, s.dim});
    const int64_t nonzero = std::min<int64_t>(16, s.dim);
    for (int64_t i = 0; i < s.n; ++i) {
      const at::Tensor pos = at::randperm(s.dim, at::kLong).narrow(0, 0, nonzero);
      q[i].index_copy_(0, pos, at::randint(0, 2, {nonzero}).mul(2).sub(1).to(at::kFloat).mul(0.5));
    }
    q = q.to(gpu);
    const at::Tensor keys = at::randint(-4, 5, {s.ld, s.dim}).to(at::kFloat).div(8).to(gpu);
    const at::Tensor got = product(q, keys), want = reference(q, keys);
    EXPECT_TRUE(at::equal(got, want)) << fmt::format("n={} ld={} dim={}: max |diff| {}", s.n, s.ld, s.dim,
                                                     (got.to(at::kFloat) - want.to(at::kFloat)).abs().max().item<float>());
  }
}

TEST_P(ReducedGemmCuda, RandomDataAgreeToOneRounding) {
  const auto gpu = at::TensorOptions().device(at::kCUDA).dtype(torch_type(GetParam()));
  at::manual_seed(9);
  at::Tensor keys = at::randn({4096, 256});
  keys = keys / keys.norm(2, {1}, true);
  at::Tensor q = at::randn({64, 256});
  q = q / q.norm(2, {1}, true);
  const at::Tensor kd = keys.to(gpu), qd = q.to(gpu);
  const at::Tensor got = product(qd, kd).to(at::kFloat), want = reference(qd, kd).to(at::kFloat);
  // Scores below 1 in magnitude: one rounding of fp16 (2⁻¹¹) or bf16 (2⁻⁸) relative, at most
  // 2⁻¹¹ / 2⁻⁸ absolute, plus float32 accumulation (far below it).
  const double tol = GetParam() == cuda::ScoreType::f16 ? 1.0 / 2048 : 1.0 / 256;
  EXPECT_LE((got - want).abs().max().item<double>(), tol);
  // Most scores round to the same value.
  EXPECT_GE(got.eq(want).to(at::kFloat).mean().item<double>(), 0.95);
}

TEST_P(ReducedGemmCuda, RefusesWhatCublasCannotTake) {
  void* h = at::cuda::getCurrentCUDABlasHandle();
  const int64_t too_big = int64_t{std::numeric_limits<int>::max()} + 1;
  // Nothing is launched: the pointers are never read.
  EXPECT_FALSE(cuda::reduced_gemm(h, GetParam(), nullptr, nullptr, 1, too_big, 16, nullptr));
  EXPECT_FALSE(cuda::reduced_gemm(h, GetParam(), nullptr, nullptr, too_big, 16, 16, nullptr));
  EXPECT_FALSE(cuda::reduced_gemm(h, cuda::ScoreType::f32, nullptr, nullptr, 1, 16, 16, nullptr));
  EXPECT_TRUE(cuda::reduced_gemm(h, GetParam(), nullptr, nullptr, 0, 16, 16, nullptr));  // empty: nothing to do
}

INSTANTIATE_TEST_SUITE_P(Types, ReducedGemmCuda, ::testing::Values(cuda::ScoreType::f16, cuda::ScoreType::bf16),
                         [](const auto& info) { return info.param == cuda::ScoreType::f16 ? "fp16" : "bf16"; });

}  // namespace
}  // namespace semskip
