// The fused rotary kernel (model/cuda/fused_ops.h) behind Rotary::apply / apply_tokens_first on CUDA,
// held bit for bit to the eager expression x·cos + roll(x, hd/2)·sin_signed computed by ATen on
// the same GPU: fp32, fp16 and bf16, strided inputs (a slice of a fused projection), both head
// layouts, per-sequence and broadcast tables.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <string>

#include "model/kv_cache.h"
#include "model/layers/rotary.h"
#include "model/layers/swiglu_mlp.h"

namespace semskip {
namespace {

at::Tensor eager(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin_signed) {
  return x * cos + at::roll(x, x.size(-1) / 2, -1) * sin_signed;
}

TEST(RopeCuda, EqualsTheEagerExpressionBitForBit) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const int64_t B = 3, T = 5, H = 6, hd = 64;
  for (at::ScalarType st : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (int64_t table_batch : {B, int64_t{1}}) {
      at::manual_seed(static_cast<uint64_t>(st) * 10 + table_batch);
      // Queries and keys as a slice of a wider projection [B, T, (H + 2)·hd].
      const at::Tensor proj = at::randn({B, T, (H + 2) * hd}, cuda).to(st);
      const at::Tensor x_tokens = proj.narrow(-1, 0, H * hd).view({B, T, H, hd});
      const at::Tensor angles = at::rand({table_batch, T, hd}, cuda) * 6.28;
      RopeTable table{angles.cos().to(st), at::Tensor(), angles.sin().to(st)};
      const std::string what = std::string(c10::toString(st)) + " table batch " + std::to_string(table_batch);
      const at::Tensor got_tokens = Rotary::apply_tokens_first(x_tokens, table);
      EXPECT_TRUE(at::equal(got_tokens, eager(x_tokens, table.cos.unsqueeze(2), table.sin_signed.unsqueeze(2))))
          << what << " tokens first";
      const at::Tensor x_heads = x_tokens.transpose(1, 2);  // [B, H, T, hd]
      const at::Tensor got_heads = Rotary::apply(x_heads, table);
      EXPECT_TRUE(at::equal(got_heads, eager(x_heads, table.cos.unsqueeze(1), table.sin_signed.unsqueeze(1))))
          << what << " heads first";
      EXPECT_EQ(got_heads.sizes(), x_heads.sizes());
    }
  }
}

TEST(SiluMulCuda, EqualsTheEagerExpressionBitForBit) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const int64_t d = 48, width = 200;
  for (at::ScalarType st : {at::kFloat, at::kHalf, at::kBFloat16}) {
    at::manual_seed(static_cast<uint64_t>(st));
    SwiGluMlp mlp;
    mlp.gate_proj.weight = (at::randn({width, d}, cuda) / 4).to(st);
    mlp.up_proj.weight = (at::randn({width, d}, cuda) / 4).to(st);
    mlp.down_proj.weight = (at::randn({d, width}, cuda) / 8).to(st);
    mlp.fuse_projections();
    // Large inputs reach the tails of silu (e^−x overflowing to inf, and underflowing).
    const at::Tensor x = (at::randn({3, 7, d}, cuda) * 6).to(st);
    const at::Tensor got = mlp.forward(x, nullptr, 0, OpGroup::mlp);
    const at::Tensor gate_up = at::linear(x, mlp.gate_up_proj.weight);
    const at::Tensor want = at::linear(at::silu(gate_up.narrow(-1, 0, width)) * gate_up.narrow(-1, width, width),
                                       mlp.down_proj.weight);
    EXPECT_TRUE(at::equal(got, want)) << c10::toString(st);
  }
}

TEST(KvWriteSlotCuda, EqualsIndexCopyAtTheSlot) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const int64_t B = 3, H = 2, hd = 64, cap = 9;
  for (at::ScalarType st : {at::kFloat, at::kBFloat16}) {
    KvCache cache(2, B, H, hd, cap, st, at::Device(at::kCUDA, 0));
    at::manual_seed(3);
    // K and V as strided views of a projection laid out [B, 1, (2·H)·hd], heads after tokens.
    const at::Tensor proj = at::randn({B, 1, 2 * H * hd}, cuda).to(st);
    const at::Tensor k = proj.narrow(-1, 0, H * hd).view({B, 1, H, hd}).transpose(1, 2);
    const at::Tensor v = proj.narrow(-1, H * hd, H * hd).view({B, 1, H, hd}).transpose(1, 2);
    const at::Tensor slot = at::full({1}, int64_t{5}, cuda.dtype(at::kLong));
    cache.write_slot(1, slot, k, v);
    const at::Tensor want_k = at::zeros({B, H, cap, hd}, cuda.dtype(st)).index_copy_(2, slot, k);
    const at::Tensor want_v = at::zeros({B, H, cap, hd}, cuda.dtype(st)).index_copy_(2, slot, v);
    EXPECT_TRUE(at::equal(cache.keys(1, cap), want_k)) << c10::toString(st);
    EXPECT_TRUE(at::equal(cache.values(1, cap), want_v)) << c10::toString(st);
    EXPECT_TRUE(at::all(cache.keys(0, cap).eq(0)).item<bool>());  // the other layer untouched
  }
}

}  // namespace
}  // namespace semskip
