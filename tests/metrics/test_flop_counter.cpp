#include <gtest/gtest.h>

#include "metrics/flop_counter.h"
#include "metrics/flop_formulas.h"

namespace semskip {
namespace {

TEST(FlopCounter, MatmulIsTwoMnk) {
  FlopCounter c;
  c.add_matmul(0, OpGroup::mlp, 3, 5, 7);
  EXPECT_EQ(c.total(), 2 * 3 * 5 * 7);
  EXPECT_EQ(c.by_group(OpGroup::mlp), 210);
  EXPECT_EQ(c.by_layer(0), 210);
  EXPECT_EQ(c.by_layer(1), 0);
}

TEST(FlopCounter, AttentionConventions) {
  FlopCounter c;
  // 4 heads of 16, 13 queries against 13 keys: dense 169 pairs, causal 91.
  c.add_attention(2, 4, 16, 169, 91);
  EXPECT_EQ(c.by_group(OpGroup::attn_products, AttnConvention::dense), 2 * 2 * 169 * 16 * 4);
  EXPECT_EQ(c.by_group(OpGroup::attn_products, AttnConvention::causal), 2 * 2 * 91 * 16 * 4);
  EXPECT_EQ(c.by_layer(2, AttnConvention::dense), 2 * 2 * 169 * 16 * 4);
  EXPECT_EQ(c.total(AttnConvention::causal), 2 * 2 * 91 * 16 * 4);
  EXPECT_EQ(c.n_layers_seen(), 3);
}

TEST(FlopCounter, OverheadIsSeparate) {
  FlopCounter c;
  c.add_matmul(1, OpGroup::attn_proj, 1, 10, 10);
  c.add(1, OpGroup::lookup, 50);
  c.add(FlopCounter::kNoLayer, OpGroup::key_proj, 7);
  EXPECT_EQ(c.total_model(), 200);
  EXPECT_EQ(c.total_overhead(), 57);
  EXPECT_EQ(c.total(), 257);
  EXPECT_TRUE(is_overhead(OpGroup::kv_propagate));
  EXPECT_FALSE(is_overhead(OpGroup::experts));
  EXPECT_STREQ(op_group_name(OpGroup::shared_expert), "shared_expert");
}

TEST(FlopCounter, InsertAndTrainAreOverheadsOfTheirLayer) {
  FlopCounter c;
  c.add_matmul(2, OpGroup::mlp, 1, 10, 10);  // 200
  c.add(2, OpGroup::lookup, 30);
  c.add(2, OpGroup::insert, 40);
  c.add(2, OpGroup::train, 1000);
  c.add(3, OpGroup::attn_proj, 5);
  EXPECT_TRUE(is_overhead(OpGroup::insert));
  EXPECT_TRUE(is_overhead(OpGroup::train));
  EXPECT_STREQ(op_group_name(OpGroup::insert), "insert");
  EXPECT_STREQ(op_group_name(OpGroup::train), "train");
  EXPECT_EQ(c.total_overhead(), 1070);
  EXPECT_EQ(c.total_model(), 205);
  EXPECT_EQ(c.by_layer(2), 1270);
  EXPECT_EQ(c.by_layer_model(2), 200);
  EXPECT_EQ(c.by_layer_overhead(2), 1070);
  EXPECT_EQ(c.by_layer_model(3), 5);
  EXPECT_EQ(c.by_layer_overhead(3), 0);
  EXPECT_EQ(c.by_layer_model(7), 0);
  // The flat list carries the new groups.
  EXPECT_EQ(FlopCounter::from_flat(c.to_flat()).by_group(OpGroup::train), 1000);
}

TEST(FlopCounter, MergeAndReset) {
  FlopCounter a, b;
  a.add_matmul(0, OpGroup::mlp, 1, 2, 3);
  a.add_attention(0, 1, 2, 4, 3);
  b.add_matmul(0, OpGroup::mlp, 1, 2, 3);
  b.add_attention(1, 1, 2, 4, 3);
  b.add(FlopCounter::kNoLayer, OpGroup::lm_head, 5);
  a.merge(b);
  EXPECT_EQ(a.by_group(OpGroup::mlp), 24);
  // Each: QKᵀ and AV, 2·head_dim FLOPs per pair each, 1 head: 8 per pair.
  EXPECT_EQ(a.by_group(OpGroup::attn_products, AttnConvention::dense), 2 * 8 * 4);
  EXPECT_EQ(a.by_group(OpGroup::attn_products, AttnConvention::causal), 2 * 8 * 3);
  EXPECT_EQ(a.n_layers_seen(), 2);
  EXPECT_EQ(a.by_group(OpGroup::lm_head), 5);
  a.reset();
  EXPECT_EQ(a.total(), 0);
  EXPECT_EQ(a.n_layers_seen(), 0);
}

// Per-token layer FLOPs of the llama-gqa fixture (d 64, 4 heads / 2 KV heads of 16, SwiGLU 160),
// written out by hand: q 64·64, k and v 64·32 each, o 64·64; MLP 3·64·160.
TEST(FlopFormulas, DenseLayerPerToken) {
  flops::LayerDims d;
  d.hidden = 64;
  d.n_heads = 4;
  d.n_kv_heads = 2;
  d.head_dim = 16;
  d.mlp_intermediate = 160;
  const flops::LayerTokenFlops f = flops::layer_token_flops(d, 10);
  EXPECT_EQ(f.attn_proj, 2 * (64 * 64 + 2 * 64 * 32 + 64 * 64));
  EXPECT_EQ(f.attn_products, 2 * 2 * 10 * 16 * 4);
  EXPECT_EQ(f.mlp, 2 * 3 * 64 * 160);
  EXPECT_EQ(f.router + f.experts + f.shared_expert, 0);
  EXPECT_EQ(f.total(), f.attn_proj + f.attn_products + f.mlp);
}

TEST(FlopFormulas, MoeLayerPerToken) {
  flops::LayerDims d;
  d.hidden = 64;
  d.n_heads = 4;
  d.n_kv_heads = 2;
  d.head_dim = 16;
  d.n_experts = 8;
  d.top_k = 2;
  d.expert_intermediate = 32;
  d.shared_intermediate = 96;
  d.shared_gate = true;
  const flops::LayerTokenFlops f = flops::layer_token_flops(d, 1);
  EXPECT_EQ(f.mlp, 0);
  EXPECT_EQ(f.router, 2 * 64 * 8);
  EXPECT_EQ(f.experts, 2 * 6 * 64 * 32);
  EXPECT_EQ(f.shared_expert, 6 * 64 * 96 + 2 * 64);
  EXPECT_EQ(flops::rotary(16, 13), 2 * 8 * 13);
}

}  // namespace
}  // namespace semskip
