// The decode step's matrix-vector kernel (model/cuda/gemv.h) behind Linear::forward on CUDA,
// held to the fp32 product of the same fp16/bf16 inputs (an independent reference: what the
// kernel computes before its one rounding) and to cuBLAS without bias, for 1–4 rows, with and without bias,
// every warps-per-row choice, a weight that is a row slice of a stacked projection, and the
// shapes it must leave to cuBLAS.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "model/cuda/gemv.h"
#include "model/layers/linear.h"

namespace semskip {
namespace {

// Largest |got − ref| ÷ (|ref| + floor) over the elements, ref in fp32.
double worst_relative(const at::Tensor& got, const at::Tensor& ref, double floor) {
  return ((got.to(at::kFloat) - ref).abs() / (ref.abs() + floor)).max().item<double>();
}

TEST(GemvCuda, EqualsTheFp32ProductToOneRounding) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  // (n, k): one warp per row (small k), several (large k, few rows), Qwen2-0.5B and Llama-3-8B shapes.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1152, 896}, {896, 4864}, {64, 4096}, {4096, 14336},
                                                           {13, 8},     {7, 4104}};
  for (at::ScalarType st : {at::kHalf, at::kBFloat16}) {
    for (auto [n, k] : shapes) {
      for (int64_t m = 1; m <= cuda::kGemvMaxRows; ++m) {
        for (bool with_bias : {false, true}) {
          at::manual_seed(static_cast<uint64_t>(n * 31 + k * 7 + m + (with_bias ? 1000 : 0)));
          Linear lin;
          lin.weight = (at::randn({n, k}, cuda) / std::sqrt(static_cast<double>(k))).to(st);
          if (with_bias) lin.bias = at::randn({n}, cuda).to(st);
          const at::Tensor x = at::randn({m, 1, k}, cuda).to(st);
          const at::Tensor got = lin.forward(x);
          ASSERT_EQ(got.sizes(), (std::vector<int64_t>{m, 1, n}));
          at::Tensor ref = at::matmul(x.to(at::kFloat), lin.weight.to(at::kFloat).t());
          if (with_bias) ref = ref + lin.bias.to(at::kFloat);
          const std::string what = std::string(c10::toString(st)) + " n=" + std::to_string(n) +
                                   " k=" + std::to_string(k) + " m=" + std::to_string(m) +
                                   " warps/row=" + std::to_string(cuda::gemv_warps_per_row(n, k)) +
                                   (with_bias ? " bias" : "");
          // One rounding of the fp32 sum: half an ulp (2^-9 bf16, 2^-12 fp16) relative, plus
          // fp32 reassociation, far below it; a wrong row, column or lane gives O(1).
          const double ulp = st == at::kBFloat16 ? 1.0 / 256 : 1.0 / 2048;
          EXPECT_LE(worst_relative(got, ref, 1e-2), ulp) << what;
          // cuBLAS from the same inputs, without bias: the same to the type's rounding. (With a
          // bias at::linear rounds the product before adding it, so near-cancelling sums differ
          // by more; the fp32 reference above is the one that holds.)
          if (!with_bias)
            EXPECT_LE(worst_relative(got, at::linear(x, lin.weight).to(at::kFloat), 1e-2), 2 * ulp) << what;
        }
      }
    }
  }
}

TEST(GemvCuda, WarpsPerRowFollowTheShape) {
  EXPECT_EQ(cuda::gemv_warps_per_row(1152, 896), 1);     // 112 vectors: 3.5 per lane
  EXPECT_EQ(cuda::gemv_warps_per_row(4096, 14336), 2);   // 4096 rows: too few warps with one each
  EXPECT_EQ(cuda::gemv_warps_per_row(64, 2048), 4);      // 256 vectors: 2 per lane with 4 warps
  EXPECT_EQ(cuda::gemv_warps_per_row(64, 4096), 8);      // 512 vectors: 2 per lane with 8 warps
  EXPECT_EQ(cuda::gemv_warps_per_row(128256, 4096), 1);  // many rows
  EXPECT_EQ(cuda::gemv_warps_per_row(8, 1 << 20), 8);
}

TEST(GemvCuda, StackedRowSlicesAndRefusedShapes) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  // A part of a stacked projection (fuse_rows): a row slice of the stack, still contiguous.
  Linear q, kv;
  q.weight = at::randn({256, 512}, cuda).to(at::kBFloat16);
  kv.weight = at::randn({128, 512}, cuda).to(at::kBFloat16);
  const Linear stacked = fuse_rows({&q, &kv});
  const at::Tensor x = at::randn({1, 512}, cuda).to(at::kBFloat16);
  const at::Tensor ref = at::matmul(x.to(at::kFloat), kv.weight.to(at::kFloat).t());
  EXPECT_LE(worst_relative(kv.forward(x), ref, 1e-2), 1.0 / 256);
  // The same warps per row for the stack and its part (one each): the same sums, bit for bit.
  EXPECT_TRUE(at::equal(stacked.forward(x).narrow(1, 256, 128), kv.forward(x)));
  // Left to cuBLAS: five rows, fp32, k not a multiple of 8 (results equal at::linear exactly).
  for (const auto& [xs, ws] : std::vector<std::pair<at::Tensor, at::Tensor>>{
           {at::randn({5, 64}, cuda).to(at::kHalf), at::randn({32, 64}, cuda).to(at::kHalf)},
           {at::randn({1, 64}, cuda), at::randn({32, 64}, cuda)},
           {at::randn({1, 60}, cuda).to(at::kHalf), at::randn({32, 60}, cuda).to(at::kHalf)}}) {
    Linear l;
    l.weight = ws;
    EXPECT_TRUE(at::equal(l.forward(xs), at::linear(xs, ws))) << xs.sizes() << " " << xs.scalar_type();
  }
  EXPECT_EQ(cuda::gemv_rows(cuda::ElemType::f32, nullptr, 1, 8, nullptr, 1, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::gemv_rows(cuda::ElemType::bf16, nullptr, 5, 8, nullptr, 1, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);
}

}  // namespace
}  // namespace semskip
