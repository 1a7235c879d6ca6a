// --ep with sharded expert weights: each rank of the group loads only the routed experts it
// owns (ModelOptions::experts, from ExpertParallelGroup::shard), so its weight memory falls
// with the group size; the logits through ExpertParallel equal the single-process run of the
// whole model. The per-layer dispatch cost (ExpertParallel::layer_stats) is checked on a
// hand-built routing: bytes are the rows sent off-rank × hidden × dtype size, skipped tokens
// never sent. Run on 1 and 2 ranks.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "comm/expert_parallel.h"
#include "comm/expert_partition.h"
#include "core/error.h"
#include "comm/expert_parallel_group.h"
#include "comm/runtime.h"
#include "dist_test_util.h"

namespace semskip::test {
namespace {

Communicator& world() { return Runtime::get().world(); }

// tiny-moe (models/tiny-moe/config.json): 6 MoE layers of 8 routed experts, each a SwiGLU of
// width 192 over d 256: 3 · 256 · 192 = 147456 parameters per expert.
constexpr int64_t kTinyLayers = 6, kTinyExperts = 8, kTinyExpertParams = 3 * 256 * 192;

struct Held {
  int64_t n_experts = 0;  // routed experts held, summed over layers
  int64_t n_params = 0;   // their parameters
  int64_t n_bytes = 0;    // their bytes (storage of the held tensors)
  int64_t n_params_other = 0;  // every other parameter of the model
};

Held held_of(const Transformer& t) {
  Held h;
  std::map<const void*, int64_t> storages;  // the distinct storages behind the held experts
  for (int64_t l = 0; l < t.n_layers(); ++l) {
    const DecoderLayer& layer = t.layer(l);
    if (!layer.moe) continue;
    for (int64_t e = 0; e < layer.moe->n_experts(); ++e) {
      if (!layer.moe->holds(e)) continue;
      const SwiGluMlp& m = layer.moe->experts[static_cast<size_t>(e)];
      h.n_experts += 1;
      h.n_params += m.n_params();
      for (const at::Tensor* w : {&m.gate_proj.weight, &m.up_proj.weight, &m.down_proj.weight, &m.gate_up_proj.weight})
        if (w->defined()) storages[w->storage().data()] = static_cast<int64_t>(w->storage().nbytes());
    }
  }
  for (const auto& kv : storages) h.n_bytes += kv.second;
  h.n_params_other = t.n_params() - h.n_params;
  return h;
}

Transformer load_shard(const ExpertShard& shard) {
  ModelOptions o;
  o.attn_impl = AttnImpl::eager;
  o.experts = shard;
  return Transformer::load(moe_model_dir("tiny-moe"), o);
}

TEST(ShardedExperts, EachRankHoldsOneNthOfTheRoutedExperts) {
  Communicator& c = world();
  ExpertParallelGroup group(c, c.size());
  const Transformer sharded = load_shard(group.shard(kTinyExperts));
  const Held mine = held_of(sharded), full = held_of(moe_model("tiny-moe"));
  // The measurement of bench/results/ep_memory.md: the storage behind this rank's weights.
  std::printf("tiny-moe fp32, ep %d, rank %d: routed experts %lld bytes held (storage), other weights %lld bytes\n",
              c.size(), c.rank(), static_cast<long long>(mine.n_bytes), static_cast<long long>(4 * mine.n_params_other));
  ASSERT_EQ(full.n_experts, kTinyLayers * kTinyExperts);
  ASSERT_EQ(full.n_params, kTinyLayers * kTinyExperts * kTinyExpertParams);
  // 8 experts divide over 1 and 2 ranks: exactly 1/n of the routed experts' parameters and
  // bytes (fp32, 4 bytes each) on every rank; everything else replicated.
  EXPECT_EQ(mine.n_experts, kTinyLayers * kTinyExperts / c.size());
  EXPECT_EQ(mine.n_params, kTinyLayers * kTinyExperts * kTinyExpertParams / c.size());
  EXPECT_EQ(mine.n_bytes, int64_t{4} * kTinyLayers * kTinyExperts * kTinyExpertParams / c.size());
  EXPECT_EQ(mine.n_params_other, full.n_params_other);
  // The held experts are this rank's own range, in every layer.
  const ExpertShard s = group.shard(kTinyExperts);
  for (int64_t e = 0; e < kTinyExperts; ++e) EXPECT_EQ(sharded.layer(0).moe->holds(e), s.holds(e)) << e;
  // Over the group, every expert is held once.
  const at::Tensor total = c.allreduce(at::tensor({mine.n_params}), ReduceOp::sum);
  EXPECT_EQ(total.item<int64_t>(), full.n_params);
  // And the held weights are the checkpoint's.
  const int64_t e0 = s.first;
  EXPECT_TRUE(at::equal(sharded.layer(2).moe->experts[static_cast<size_t>(e0)].down_proj.weight,
                        moe_model("tiny-moe").layer(2).moe->experts[static_cast<size_t>(e0)].down_proj.weight));
}

TEST(ShardedExperts, LogitsEqualTheSingleProcessRun) {
  Communicator& c = world();
  ExpertParallelGroup group(c, c.size());
  const Transformer sharded = load_shard(group.shard(kTinyExperts));
  at::manual_seed(static_cast<uint64_t>(5 + c.rank()));
  const at::Tensor ids = at::randint(sharded.config().vocab_size, {2, 20 + 3 * c.rank()}, at::kLong);
  const at::Tensor single = moe_model("tiny-moe").forward(ids, ForwardOptions{});
  ForwardOptions fo;
  fo.moe_executor = &group.executor();
  const at::Tensor got = sharded.forward(ids, fo);
  EXPECT_LE(rel_err(got, single), 1e-5);
  // Without the executor a rank cannot run experts it does not hold, and says so.
  if (c.size() > 1) {
    try {
      sharded.forward(ids, ForwardOptions{});
      ADD_FAILURE() << "a sharded model ran without ExpertParallel";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("is not held by this process"), std::string::npos) << e.what();
    }
  }
}

// A MoE block of 4 experts (top-1) over d 8 with hand-set routing: rank r's 6 tokens go to
// experts [0, 1, 2, 3, 3, 0]. Over 2 ranks rank 0 owns [0,2), rank 1 [2,4).
MoeBlock hand_block() {
  at::manual_seed(3);
  MoeBlock moe;
  moe.top_k = 1;
  moe.router.weight = at::randn({4, 8});
  for (int e = 0; e < 4; ++e) {
    SwiGluMlp m;
    m.gate_proj.weight = at::randn({16, 8});
    m.up_proj.weight = at::randn({16, 8});
    m.down_proj.weight = at::randn({8, 16});
    moe.experts.push_back(m);
  }
  return moe;
}

Routing hand_routing(const std::vector<int64_t>& experts) {
  Routing r;
  const int64_t n = static_cast<int64_t>(experts.size());
  r.topk_ids = at::tensor(experts, at::kLong).view({n, 1});
  r.topk_weights = at::ones({n, 1});
  r.router_logits = at::zeros({n, 4});
  return r;
}

TEST(DispatchCost, BytesAreTheRowsSentOffRank) {
  Communicator& c = world();
  const MoeBlock moe = hand_block();
  ExpertParallel ep(c);
  at::manual_seed(static_cast<uint64_t>(20 + c.rank()));
  const at::Tensor x = at::randn({6, 8});
  const std::vector<int64_t> ids = {0, 1, 2, 3, 3, 0};
  const at::Tensor out = ep.forward_routed(moe, x, hand_routing(ids), nullptr, /*layer=*/3);
  EXPECT_LE(rel_err(out, moe.forward_routed(x, hand_routing(ids))), 1e-6);
  ASSERT_EQ(ep.layer_stats().size(), 4u);
  EXPECT_EQ(ep.layer_stats()[0].n_calls, 0);
  const EpLayerStats& l = ep.layer_stats()[3];
  EXPECT_EQ(l.n_calls, 1);
  EXPECT_EQ(l.n_rows_routed, 6);
  // Off-rank fraction: 0 in a world of one; with 2 ranks 3 of the 6 rows (rank 0 sends its
  // tokens of experts 2, 3, 3; rank 1 those of 0, 1, 0) and as many come in.
  const int64_t off = c.size() == 1 ? 0 : 3;
  EXPECT_EQ(l.n_rows_sent, off);
  EXPECT_EQ(l.n_rows_recv, c.size() == 1 ? 0 : 3);
  // tokens × hidden × dtype size × fraction sent off-rank = 6 · 8 · 4 · off/6.
  EXPECT_EQ(l.bytes_dispatch, 6 * 8 * 4 * off / 6);
  EXPECT_EQ(l.bytes_combine, 6 * 8 * 4 * off / 6);
  EXPECT_GE(l.t_alltoall_ns, 0);
}

TEST(DispatchCost, SkippedTokensAreNotSent) {
  Communicator& c = world();
  const MoeBlock moe = hand_block();
  ExpertParallel ep(c);
  at::manual_seed(static_cast<uint64_t>(30 + c.rank()));
  const at::Tensor x = at::randn({6, 8});
  // Only rows 0 and 2 run the layer (the others hit the cache); the router picks their experts.
  const at::Tensor kept = at::tensor({0, 2}, at::kLong);
  const at::Tensor out = ep.forward_rows(moe, x, kept, nullptr, /*layer=*/0);
  const EpLayerStats& l = ep.layer_stats().at(0);
  EXPECT_EQ(l.n_rows_routed, 2);  // 2 tokens × top-1, the 4 hits never routed
  const Routing r = moe.route(x.index_select(0, kept));
  int64_t off = 0;
  const ExpertPartition part(4, c.size());
  for (int64_t i = 0; i < 2; ++i) off += part.owner(r.topk_ids[i][0].item<int64_t>()) != c.rank() ? 1 : 0;
  EXPECT_EQ(l.n_rows_sent, off);
  EXPECT_EQ(l.bytes_dispatch, off * 8 * 4);
  EXPECT_EQ(c.allreduce(at::tensor({l.n_rows_sent}), ReduceOp::sum).item<int64_t>(),
            c.allreduce(at::tensor({l.n_rows_recv}), ReduceOp::sum).item<int64_t>());
  // The hit rows are zero in the output: they never ran the layer.
  EXPECT_TRUE(at::equal(out[1], at::zeros({8})));
}

}  // namespace
}  // namespace semskip
