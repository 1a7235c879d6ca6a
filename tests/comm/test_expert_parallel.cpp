// Expert parallelism against the single-process MoE: every rank holds the whole model, so it
// computes its own reference with MoeBlock::forward / Transformer::forward next to the
// expert-parallel result. Ranks feed different inputs (different token counts, rank 2 none)
// so rows of several ranks meet at each expert. Run on 1–4 ranks: 8 experts over 3 ranks and
// the mixtral fixture's 4 experts over 3 ranks are uneven splits.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "comm/expert_parallel.h"
#include "comm/expert_parallel_group.h"
#include "comm/runtime.h"
#include "dist_test_util.h"
#include "model/generation.h"
#include "model/safetensors.h"

namespace semskip::test {
namespace {

constexpr double kTol = 1e-5;  // fp32, against the single-process forward

Communicator& world() { return Runtime::get().world(); }

// Tokens of rank r: varied, and none at all on rank 2.
int64_t n_tokens_of(int rank) {
  static const int64_t kCounts[] = {7, 13, 0, 4, 9};
  return kCounts[rank % 5];
}

at::Tensor rank_input(int64_t n, int64_t d, int seed) {
  at::manual_seed(static_cast<uint64_t>(seed));
  return at::randn({n, d}) * 2.0;
}

int64_t sum_over_ranks(Communicator& c, int64_t v) {
  return c.allreduce(at::tensor({v}), ReduceOp::sum).item<int64_t>();
}

class EpModel : public ::testing::TestWithParam<std::string> {};

TEST_P(EpModel, EveryMoeLayerMatchesTheSingleProcessBlock) {
  const Transformer& model = moe_model(GetParam());
  Communicator& c = world();
  ExpertParallel ep(c);
  const int64_t d = model.config().hidden_size;
  for (int64_t l = 0; l < model.n_layers(); ++l) {
    SCOPED_TRACE(fmt::format("layer {}", l));
    const MoeBlock& moe = *model.layer(l).moe;
    const at::Tensor x = rank_input(n_tokens_of(c.rank()), d, 100 * static_cast<int>(l) + c.rank());
    FlopCounter f_ref, f_ep;
    const at::Tensor ref = moe.forward(x, &f_ref, static_cast<int>(l));
    ep.reset_stats();
    const at::Tensor out = ep.forward(moe, x, &f_ep, static_cast<int>(l));
    ASSERT_EQ(out.sizes(), ref.sizes());
    if (x.size(0) > 0) EXPECT_LE(rel_err(out, ref), kTol);
    EXPECT_EQ(ep.stats().n_pairs_routed, x.size(0) * moe.top_k);

    // This rank's expert FLOPs are those of the pairs it ran: 3 matmuls of 2·d·I per pair.
    const int64_t inter = moe.experts.front().intermediate_size();
    EXPECT_EQ(f_ep.by_group(OpGroup::experts), ep.stats().n_pairs_run * 6 * d * inter);
    // Router and shared expert stay where the tokens are.
    EXPECT_EQ(f_ep.by_group(OpGroup::router), f_ref.by_group(OpGroup::router));
    EXPECT_EQ(f_ep.by_group(OpGroup::shared_expert), f_ref.by_group(OpGroup::shared_expert));
    // Over the group, the same expert work as single-process runs of every rank's tokens.
    EXPECT_EQ(sum_over_ranks(c, f_ep.by_group(OpGroup::experts)), sum_over_ranks(c, f_ref.by_group(OpGroup::experts)));
    EXPECT_EQ(sum_over_ranks(c, ep.stats().n_pairs_run), sum_over_ranks(c, ep.stats().n_pairs_routed));
    EXPECT_EQ(sum_over_ranks(c, ep.stats().n_pairs_sent), sum_over_ranks(c, ep.stats().n_pairs_recv));
    if (c.size() == 1) EXPECT_EQ(ep.stats().n_pairs_sent, 0);
  }
}

TEST_P(EpModel, MaskedTokensStayOutOfTheAllToAll) {
  const Transformer& model = moe_model(GetParam());
  Communicator& c = world();
  ExpertParallel ep(c);
  const MoeBlock& moe = *model.layer(0).moe;
  const int64_t n = 12, d = model.config().hidden_size;
  const at::Tensor x = rank_input(n, d, 7 + c.rank());
  // Rank r keeps rows j with (j + r) % 3 != 0; on the last rank, none at all.
  at::Tensor mask = at::empty({n}, at::kBool);
  for (int64_t j = 0; j < n; ++j) mask[j] = (j + c.rank()) % 3 != 0 && c.rank() != c.size() - 1;
  const at::Tensor kept = mask.nonzero().reshape({-1});
  const at::Tensor ref_all = moe.forward(x);

  c.reset_stats();
  const at::Tensor out = ep.forward_rows(moe, x, mask);
  // The rows that run are those of the unmasked forward; the others are zero.
  if (kept.numel() > 0) EXPECT_LE(rel_err(out.index_select(0, kept), ref_all.index_select(0, kept)), kTol);
  EXPECT_TRUE(at::equal(out.index_select(0, mask.logical_not().nonzero().reshape({-1})),
                        at::zeros({n - kept.numel(), d})));
  // Only the kept tokens were routed, and only their rows crossed ranks: this rank sent the
  // pairs it routed to other owners, the outputs of the pairs it ran for others, and the
  // per-expert counts (int64) of the other ranks' experts.
  EXPECT_EQ(ep.stats().n_pairs_routed, kept.numel() * moe.top_k);
  EXPECT_EQ(sum_over_ranks(c, ep.stats().n_pairs_run), sum_over_ranks(c, kept.numel() * moe.top_k));
  const int64_t row_bytes = d * static_cast<int64_t>(sizeof(float));
  const int64_t other_experts = moe.n_experts() - ep.partition(moe.n_experts()).count(c.rank());
  EXPECT_EQ(c.stats()[CollectiveKind::alltoallv].bytes_sent,
            (ep.stats().n_pairs_sent + ep.stats().n_pairs_recv) * row_bytes + other_experts * 8);

  // Indices instead of a mask: the same result.
  ep.reset_stats();
  EXPECT_TRUE(at::equal(ep.forward_rows(moe, x, kept), out));
}

TEST_P(EpModel, LogitsMatchSingleProcessAndReference) {
  const std::string name = GetParam();
  const Transformer& model = moe_model(name);
  Communicator& c = world();
  ExpertParallel ep(c);
  at::Tensor ids, ref_logits;
  if (name == "tiny-moe") {
    at::manual_seed(static_cast<uint64_t>(11 + c.rank()));
    ids = at::randint(model.config().vocab_size, {2, 24 + 5 * c.rank()}, at::kLong);
  } else {
    // Ranks alternate between the two reference sequences.
    const SafetensorsFile ref(moe_model_dir(name) + "/reference.safetensors");
    ids = ref.tensor(fmt::format("ids_{}", c.rank() % 2)).to(at::kLong).unsqueeze(0);
    ref_logits = ref.tensor(fmt::format("logits_{}", c.rank() % 2));
  }
  FlopCounter f_single, f_ep;
  ForwardOptions single_options;
  single_options.flops = &f_single;
  const at::Tensor single = model.forward(ids, single_options);
  ForwardOptions fo;
  fo.moe_executor = &ep;
  fo.flops = &f_ep;
  const at::Tensor got = model.forward(ids, fo);
  EXPECT_LE(rel_err(got, single), kTol);
  if (ref_logits.defined()) EXPECT_LE(rel_err(got[0], ref_logits), 1e-4);
  EXPECT_EQ(ep.stats().n_calls, model.n_layers());
  // Everything but the routed experts is counted where the tokens are.
  EXPECT_EQ(f_ep.total() - f_ep.by_group(OpGroup::experts), f_single.total() - f_single.by_group(OpGroup::experts));
  EXPECT_EQ(sum_over_ranks(c, f_ep.by_group(OpGroup::experts)), sum_over_ranks(c, f_single.by_group(OpGroup::experts)));
}

TEST_P(EpModel, GreedyGenerationMatchesSingleProcess) {
  const Transformer& model = moe_model(GetParam());
  Communicator& c = world();
  ExpertParallel ep(c);
  // Two prompts of different lengths per rank (left padding), different on every rank; no
  // end-of-sequence token, so every rank decodes the same number of steps.
  at::manual_seed(static_cast<uint64_t>(300 + c.rank()));
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t len : {5 + c.rank(), 9}) {
    const at::Tensor p = at::randint(model.config().vocab_size, {len}, at::kLong);
    prompts.emplace_back(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + len);
  }
  GenerateOptions go;
  go.max_new_tokens = 6;
  const GenerateResult single = generate_greedy(model, prompts, go);
  go.moe_executor = &ep;
  const GenerateResult got = generate_greedy(model, prompts, go);
  EXPECT_EQ(got.tokens, single.tokens);
  EXPECT_EQ(ep.stats().n_calls, (1 + got.n_decode_steps) * model.n_layers());
}

INSTANTIATE_TEST_SUITE_P(Models, EpModel, ::testing::Values("qwen2moe", "mixtral", "tiny-moe"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) if (ch == '-') ch = '_';
                           return s;
                         });

TEST(ExpertParallel, Bf16ComputeMatchesSingleProcess) {
  const Transformer& model = moe_model("tiny-moe", DType::bf16);
  Communicator& c = world();
  ExpertParallel ep(c);
  const MoeBlock& moe = *model.layer(1).moe;
  const at::Tensor x = rank_input(n_tokens_of(c.rank()) + 3, model.config().hidden_size, 40 + c.rank()).to(at::kBFloat16);
  const at::Tensor ref = moe.forward(x);
  const at::Tensor out = ep.forward(moe, x);
  ASSERT_EQ(out.scalar_type(), at::kBFloat16);
  EXPECT_LE(rel_err(out, ref), 1e-2);
}

TEST(ExpertParallel, GroupsOfTwoInsideTheWorld) {
  Communicator& c = world();
  if (c.size() % 2 != 0 || c.size() < 4) GTEST_SKIP() << "needs a world of 4 or more ranks in pairs";
  // --ep 2 on 4 ranks: two groups that exchange tokens only among themselves.
  const Transformer& model = moe_model("qwen2moe");
  ExpertParallelGroup group(c, 2, &model.config());
  EXPECT_EQ(group.index(), c.rank() / 2);
  EXPECT_EQ(group.n_groups(), c.size() / 2);
  EXPECT_EQ(group.comm().rank(), c.rank() % 2);
  EXPECT_EQ(group.describe(8), fmt::format("ep 2 of {} ranks, group {}/{}: 8 experts over 2 ranks: [0,4) [4,8)",
                                           c.size(), c.rank() / 2, c.size() / 2));
  const MoeBlock& moe = *model.layer(2).moe;
  const at::Tensor x = rank_input(n_tokens_of(c.rank()) + 1, model.config().hidden_size, 90 + c.rank());
  const int64_t world_calls = c.stats().total().n_calls;
  EXPECT_LE(rel_err(group.executor().forward(moe, x), moe.forward(x)), kTol);
  EXPECT_EQ(group.comm().stats()[CollectiveKind::alltoallv].n_calls, 3);
  EXPECT_EQ(c.stats().total().n_calls, world_calls);  // nothing went through the world
  // Pairs crossed only inside the group: what the group's ranks sent, they received.
  const int64_t sent = group.executor().stats().n_pairs_sent, recv = group.executor().stats().n_pairs_recv;
  EXPECT_EQ(group.comm().allreduce(at::tensor({sent - recv}), ReduceOp::sum).item<int64_t>(), 0);
}

TEST(ExpertParallel, GroupsRefuseWhatCannotBeSplit) {
  Communicator& c = world();
  // Refused on every rank alike, before any collective.
  try {
    ExpertParallelGroup g(c, c.size() + 1);
    ADD_FAILURE() << "--ep " << c.size() + 1 << " on " << c.size() << " ranks was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a multiple of"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ExpertParallelGroup(c, 0), Error);
  ModelOptions o;
  o.attn_impl = AttnImpl::eager;
  const Transformer dense = Transformer::load(std::string(SEMSKIP_TEST_DATA) + "/parity/llama-gqa", o);
  if (c.size() > 1) {
    EXPECT_THROW(ExpertParallelGroup(c, c.size(), &dense.config()), Error);
  }
  // --ep 1: every rank its own group, no experts distributed.
  ExpertParallelGroup single(c, 1, &dense.config());
  EXPECT_EQ(single.n_groups(), c.size());
  EXPECT_EQ(single.comm().size(), 1);
  c.barrier();
}

}  // namespace
}  // namespace semskip::test
