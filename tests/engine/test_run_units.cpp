// The pieces of `semskip run` between the evaluator and the report, on hand-made records:
// the reduction over ranks (run_summary.h), the single-process gather (run_gather.h) and the
// run configuration's checks and JSON form (run_config.h). Expected values are computed by
// hand from the records, not by the code under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/evaluator.h"
#include "engine/run_config.h"
#include "engine/run_gather.h"
#include "engine/run_summary.h"
#include "skip/semantic_cache.h"

using namespace semskip;

namespace {

RankRecord rank_record(int rank) {
  RankRecord k;
  k.rank = rank;
  if (rank == 0) {
    k.n_requests = 2, k.n_tokens = 100, k.n_steps = 2;
    k.flops_full = 1000, k.flops_executed = 600, k.flops_overhead = 100;
    k.t_full_ns = 3'000'000'000, k.t_skip_ns = 2'000'000'000, k.t_lookup_ns = 500'000'000, k.t_comm_ns = 100'000'000;
    k.cache.lookups = 2, k.cache.hits = 1, k.cache.vetoed = 0;
    k.cache.insertions = 7, k.cache.evictions = 3, k.cache.rejected = 1, k.cache.size = 4, k.cache.capacity = 4;
    k.cache.key_dim = 64, k.cache.value_bytes = 4096;
    k.comm.by_kind[static_cast<size_t>(CollectiveKind::allreduce)].bytes_sent = 100;
  } else {
    k.n_requests = 1, k.n_tokens = 50, k.n_steps = 1;
    k.flops_full = 3000, k.flops_executed = 1400, k.flops_overhead = 500;
    k.t_full_ns = 1'000'000'000, k.t_skip_ns = 4'000'000'000, k.t_lookup_ns = 1'500'000'000, k.t_comm_ns = 300'000'000;
    k.cache.lookups = 10, k.cache.hits = 9, k.cache.vetoed = 1;
    k.cache.insertions = 5, k.cache.evictions = 2, k.cache.rejected = 0, k.cache.size = 3, k.cache.capacity = 4;
    k.cache.key_dim = 64, k.cache.value_bytes = 3072;
    k.comm.by_kind[static_cast<size_t>(CollectiveKind::allgather)].bytes_sent = 40;
  }
  return k;
}

RequestRecord request(int64_t id, int rank, int64_t step, int64_t positions, int64_t match, double kl,
                      double nll_full, double nll_skip) {
  RequestRecord q;
  q.request_id = id, q.rank = rank, q.step = step, q.n_tokens = positions;
  q.accuracy.n_positions = positions, q.accuracy.n_top1_match = match, q.accuracy.kl_sum = kl;
  q.accuracy.n_targets = positions, q.accuracy.nll_full_sum = nll_full, q.accuracy.nll_skip_sum = nll_skip;
  return q;
}

GatheredResult two_ranks() {
  GatheredResult g;
  g.policy = "residual:p=2,r=7,tau=0.9";
  g.index = "torch:flat";
  g.ranks = {rank_record(0), rank_record(1)};
  // Per-request ratios 1.0, 0.5, 0.5 (mean 2/3); over positions 55/100.
  g.requests = {request(8, 0, 0, 10, 10, 1.0, 20.0, 21.0), request(9, 1, 0, 80, 40, 8.0, 160.0, 170.0),
                request(10, 0, 1, 10, 5, 1.0, 20.0, 29.0)};
  g.layers = LayerCounts(2);
  g.layers.n_block_run = {150, 100};
  g.layers.n_block_skip = {0, 50};
  g.layer_flops_full = {10, 20};
  g.layer_flops_executed = {10, 5};
  return g;
}

template <typename T>
const std::vector<T>& column(const report::Table& t, const std::string& name) {
  const report::Column* c = t.find(name);
  if (c == nullptr) throw std::runtime_error("no column " + name);
  return std::get<std::vector<T>>(c->data);
}

}  // namespace

TEST(RunSummary, SumsCountsTakesTheSlowestRankAndComputesRatesFromSums) {
  const PolicySummary s = summarize(two_ranks(), 200, 1);
  EXPECT_EQ(s.policy, "residual:p=2,r=7,tau=0.9");
  EXPECT_EQ(s.index, "torch:flat");
  EXPECT_EQ(s.n_ranks, 2);
  EXPECT_EQ(s.n_requests, 3);
  EXPECT_EQ(s.n_tokens, 150);
  EXPECT_EQ(s.flops_full, 4000);
  EXPECT_EQ(s.flops_executed, 2000);
  EXPECT_EQ(s.flops_overhead, 600);
  EXPECT_DOUBLE_EQ(s.flops_saved_gross, 0.5);            // 1 − 2000/4000
  EXPECT_DOUBLE_EQ(s.flops_saved_net, 0.35);             // 1 − 2600/4000 (not the mean of 0.3 and 0.37)
  EXPECT_DOUBLE_EQ(s.hit_rate, 10.0 / 12.0);             // Σ hits / Σ lookups, not (0.5 + 0.9) / 2
  EXPECT_DOUBLE_EQ(s.skip_rate, 50.0 / 300.0);           // Σ skipped / Σ (run + skipped) over layers
  EXPECT_DOUBLE_EQ(s.t_full_s, 3.0);                     // the slowest rank
  EXPECT_DOUBLE_EQ(s.t_full_s_mean, 2.0);
  EXPECT_DOUBLE_EQ(s.t_skip_s, 4.0);
  EXPECT_DOUBLE_EQ(s.t_skip_s_mean, 3.0);
  EXPECT_DOUBLE_EQ(s.t_lookup_s, 1.5);
  EXPECT_DOUBLE_EQ(s.t_lookup_s_mean, 1.0);
  EXPECT_DOUBLE_EQ(s.t_comm_s, 0.3);
  EXPECT_DOUBLE_EQ(s.t_comm_s_mean, 0.2);
  EXPECT_DOUBLE_EQ(s.speedup, 0.75);                     // 3.0 / 4.0, both the slowest rank's
  EXPECT_DOUBLE_EQ(s.tokens_per_s, 37.5);                // 150 tokens / 4.0 s
  EXPECT_EQ(s.comm_sent_bytes, 140);
  // Local caches add up.
  EXPECT_EQ(s.cache.lookups, 12);
  EXPECT_EQ(s.cache.hits, 10);
  EXPECT_EQ(s.cache.vetoed, 1);
  EXPECT_EQ(s.cache.insertions, 12);
  EXPECT_EQ(s.cache.evictions, 5);
  EXPECT_EQ(s.cache.size, 7);
  EXPECT_EQ(s.cache.capacity, 8);
  EXPECT_EQ(s.cache.value_bytes, 7168);
  EXPECT_EQ(s.cache.key_dim, 64);
  // Accuracy over every position of every request, not the mean of per-request ratios.
  EXPECT_DOUBLE_EQ(s.accuracy.top1_agreement.value, 0.55);
  EXPECT_DOUBLE_EQ(s.accuracy.kl.value, 0.1);            // 10 nats / 100 positions
  EXPECT_NEAR(s.accuracy.ppl_full.value, std::exp(2.0), 1e-9);   // 200 / 100
  EXPECT_NEAR(s.accuracy.ppl_skip.value, std::exp(2.2), 1e-9);   // 220 / 100
  EXPECT_LE(s.accuracy.top1_agreement.lo, 0.55);
  EXPECT_GE(s.accuracy.top1_agreement.hi, 0.55);
}

TEST(RunSummary, AReplicatedCacheIsOneReplicaWithEveryRanksLookups) {
  const PolicySummary s = summarize(two_ranks(), 10, 1, /*replicated_cache=*/true);
  EXPECT_EQ(s.cache.lookups, 12);
  EXPECT_EQ(s.cache.hits, 10);
  EXPECT_EQ(s.cache.vetoed, 1);
  EXPECT_EQ(s.cache.insertions, 7);  // rank 0's replica
  EXPECT_EQ(s.cache.evictions, 3);
  EXPECT_EQ(s.cache.size, 4);
  EXPECT_EQ(s.cache.capacity, 4);
  EXPECT_EQ(s.cache.value_bytes, 4096);
  EXPECT_DOUBLE_EQ(s.hit_rate, 10.0 / 12.0);
}

TEST(RunSummary, NoCacheNoTimeAndNoFlopsGiveZeroRatesNotNaN) {
  GatheredResult g;
  g.policy = "none";
  g.ranks = {RankRecord{}};
  g.layers = LayerCounts(1);
  const PolicySummary s = summarize(g, 10, 0);
  EXPECT_EQ(s.hit_rate, 0.0);
  EXPECT_EQ(s.skip_rate, 0.0);
  EXPECT_EQ(s.flops_saved_gross, 0.0);
  EXPECT_EQ(s.flops_saved_net, 0.0);
  EXPECT_EQ(s.speedup, 0.0);
  EXPECT_EQ(s.tokens_per_s, 0.0);
}

TEST(RunSummary, TablesCarryTheSummaryAndPerRankFigures) {
  const GatheredResult g = two_ranks();
  const report::Table t = summary_table({summarize(g, 10, 1)});
  EXPECT_EQ(t.n_rows(), 1u);
  EXPECT_EQ(column<std::string>(t, "policy")[0], g.policy);
  EXPECT_EQ(column<int64_t>(t, "n_tokens")[0], 150);
  EXPECT_EQ(column<int64_t>(t, "flops_overhead")[0], 600);
  EXPECT_DOUBLE_EQ(column<double>(t, "flops_saved_net")[0], 0.35);
  EXPECT_EQ(column<int64_t>(t, "cache_vetoed")[0], 1);
  EXPECT_EQ(column<int64_t>(t, "comm_sent_bytes")[0], 140);
  EXPECT_DOUBLE_EQ(column<double>(t, "t_skip_s_mean")[0], 3.0);

  const report::Table r = per_rank_table({g}, {"node-a", "node-b"});
  ASSERT_EQ(r.n_rows(), 2u);
  EXPECT_EQ(column<std::string>(r, "host"), (std::vector<std::string>{"node-a", "node-b"}));
  EXPECT_EQ(column<int64_t>(r, "rank"), (std::vector<int64_t>{0, 1}));
  // t_compute = t_skip − t_lookup − t_comm.
  EXPECT_EQ(column<int64_t>(r, "t_compute_ns"), (std::vector<int64_t>{1'400'000'000, 2'200'000'000}));
  EXPECT_EQ(column<double>(r, "tokens_per_s"), (std::vector<double>{50.0, 12.5}));
  EXPECT_EQ(column<int64_t>(r, "comm_allreduce_sent_bytes"), (std::vector<int64_t>{100, 0}));
  EXPECT_EQ(column<int64_t>(r, "comm_allgather_sent_bytes"), (std::vector<int64_t>{0, 40}));
  EXPECT_EQ(column<int64_t>(r, "cache_rejected"), (std::vector<int64_t>{1, 0}));

  const report::Table l = per_layer_table({g});
  EXPECT_EQ(column<int64_t>(l, "layer"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(column<int64_t>(l, "n_block_skip"), (std::vector<int64_t>{0, 50}));
  EXPECT_EQ(column<int64_t>(l, "flops_executed"), (std::vector<int64_t>{10, 5}));

  const report::Table q = requests_table({g});
  EXPECT_EQ(column<int64_t>(q, "request_id"), (std::vector<int64_t>{8, 9, 10}));
  EXPECT_EQ(column<int64_t>(q, "n_top1_match"), (std::vector<int64_t>{10, 40, 5}));
  EXPECT_EQ(column<double>(q, "nll_sum"), (std::vector<double>{21.0, 170.0, 29.0}));
}

// The single-process gather packs and unpacks every field: a round trip of hand-made values.
TEST(RunGather, OneProcessRoundTripsEveryField) {
  PolicyResult p;
  p.policy = "residual:p=1,r=3,tau=0.9";
  p.index = "torch:flat";
  p.rank = 0;
  p.flops_full.add(0, OpGroup::mlp, 1000);
  p.flops_full.add(1, OpGroup::attn_proj, 500);
  p.flops_full.add(FlopCounter::kNoLayer, OpGroup::lm_head, 77);
  p.flops_skip.add(0, OpGroup::mlp, 400);
  p.flops_skip.add(1, OpGroup::attn_proj, 300);
  p.flops_skip.add(0, OpGroup::lookup, 30);
  p.flops_skip.add(1, OpGroup::kv_propagate, 20);
  p.flops_skip.add(FlopCounter::kNoLayer, OpGroup::lm_head, 77);
  p.layers = LayerCounts(2);
  p.layers.n_block_run = {11, 5};
  p.layers.n_block_skip = {0, 6};
  p.layers.n_mlp_skip = {1, 0};
  p.layers.n_kv_propagated = {0, 6};
  p.cache.lookups = 11, p.cache.hits = 6, p.cache.insertions = 5, p.cache.evictions = 2, p.cache.rejected = 1;
  p.cache.vetoed = 3, p.cache.size = 3, p.cache.capacity = 3, p.cache.key_dim = 16, p.cache.value_bytes = 96;
  p.t_full_ns = 101, p.t_skip_ns = 202, p.t_lookup_ns = 33, p.t_calib_ns = 44;
  p.comm.by_kind[static_cast<size_t>(CollectiveKind::broadcast)] = {5, 6, 7, 8};
  p.comm_full.by_kind[static_cast<size_t>(CollectiveKind::barrier)].t_ns = 9;
  p.comm.by_kind[static_cast<size_t>(CollectiveKind::allreduce)].t_ns = 10;
  p.ep.n_calls = 12, p.ep.n_pairs_routed = 13, p.ep.n_pairs_sent = 14, p.ep.n_pairs_run = 15;
  p.ep.n_pairs_recv = 16, p.ep.t_alltoall_ns = 17, p.ep.t_experts_ns = 18;
  RequestRecord a = request(5, 0, 0, 7, 6, 0.25, 3.5, 4.5);
  a.n_block_skips = 4, a.n_mlp_skips = 1;
  a.accuracy.n_generated = 3, a.accuracy.matched_prefix = 2, a.accuracy.exact_match = false;
  RequestRecord b = request(6, 0, 1, 4, 4, 0.0, 1.0, 1.0);
  b.accuracy.n_generated = 3, b.accuracy.matched_prefix = 3, b.accuracy.exact_match = true;
  p.requests = {a, b};
  StepRecord s0;
  s0.step = 0, s0.n_requests = 1, s0.n_tokens = 7, s0.flops_full = 1, s0.flops_executed = 2, s0.flops_overhead = 3;
  s0.t_full_ns = 4, s0.t_skip_ns = 5, s0.t_lookup_ns = 6, s0.t_comm_ns = 7, s0.comm_sent_bytes = 8;
  s0.comm_recv_bytes = 9, s0.t_full_comm_ns = 10, s0.cache_lookups = 7, s0.cache_hits = 2, s0.cache_vetoed = 1;
  s0.cache_size = 3;
  StepRecord s1 = s0;
  s1.step = 1, s1.n_tokens = 4, s1.cache_lookups = 4;
  StepRecord s2 = s0;  // a step in which this rank had no request (lockstep)
  s2.step = 2, s2.n_requests = 0, s2.n_tokens = 0;
  p.steps = {s0, s1, s2};

  const std::vector<GatheredResult> out = gather_results({p}, nullptr);
  ASSERT_EQ(out.size(), 1u);
  const GatheredResult& g = out[0];
  EXPECT_EQ(g.policy, p.policy);
  EXPECT_EQ(g.index, p.index);
  ASSERT_EQ(g.ranks.size(), 1u);
  const RankRecord& k = g.ranks[0];
  EXPECT_EQ(k.rank, 0);
  EXPECT_EQ(k.n_requests, 2);
  EXPECT_EQ(k.n_tokens, 11);  // Σ over steps
  EXPECT_EQ(k.n_steps, 2);    // steps with requests
  EXPECT_EQ(k.flops_full, 1577);
  EXPECT_EQ(k.flops_executed, 777);  // the model's own operations
  EXPECT_EQ(k.flops_overhead, 50);   // lookup + K/V propagation
  EXPECT_EQ(k.t_full_ns, 101);
  EXPECT_EQ(k.t_skip_ns, 202);
  EXPECT_EQ(k.t_lookup_ns, 33);
  EXPECT_EQ(k.t_calib_ns, 44);
  EXPECT_EQ(k.t_comm_ns, 18);       // Σ over kinds: broadcast 8 + allreduce 10
  EXPECT_EQ(k.t_full_comm_ns, 9);
  EXPECT_EQ(k.cache.lookups, 11);
  EXPECT_EQ(k.cache.hits, 6);
  EXPECT_EQ(k.cache.vetoed, 3);
  EXPECT_EQ(k.cache.insertions, 5);
  EXPECT_EQ(k.cache.evictions, 2);
  EXPECT_EQ(k.cache.rejected, 1);
  EXPECT_EQ(k.cache.size, 3);
  EXPECT_EQ(k.cache.capacity, 3);
  EXPECT_EQ(k.cache.key_dim, 16);
  EXPECT_EQ(k.cache.value_bytes, 96);
  const CollectiveCounters& bc = k.comm[CollectiveKind::broadcast];
  EXPECT_EQ(bc.n_calls, 5);
  EXPECT_EQ(bc.bytes_sent, 6);
  EXPECT_EQ(bc.bytes_recv, 7);
  EXPECT_EQ(bc.t_ns, 8);
  EXPECT_EQ(k.comm[CollectiveKind::allreduce].t_ns, 10);
  EXPECT_EQ(k.comm[CollectiveKind::allgather].n_calls, 0);
  EXPECT_EQ(k.ep.n_calls, 12);
  EXPECT_EQ(k.ep.n_pairs_routed, 13);
  EXPECT_EQ(k.ep.n_pairs_sent, 14);
  EXPECT_EQ(k.ep.n_pairs_run, 15);
  EXPECT_EQ(k.ep.n_pairs_recv, 16);
  EXPECT_EQ(k.ep.t_alltoall_ns, 17);
  EXPECT_EQ(k.ep.t_experts_ns, 18);

  ASSERT_EQ(g.requests.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const RequestRecord &got = g.requests[i], &want = p.requests[i];
    EXPECT_EQ(got.request_id, want.request_id);
    EXPECT_EQ(got.rank, want.rank);
    EXPECT_EQ(got.step, want.step);
    EXPECT_EQ(got.n_tokens, want.n_tokens);
    EXPECT_EQ(got.n_block_skips, want.n_block_skips);
    EXPECT_EQ(got.n_mlp_skips, want.n_mlp_skips);
    EXPECT_EQ(got.accuracy.n_positions, want.accuracy.n_positions);
    EXPECT_EQ(got.accuracy.n_top1_match, want.accuracy.n_top1_match);
    EXPECT_EQ(got.accuracy.n_targets, want.accuracy.n_targets);
    EXPECT_EQ(got.accuracy.n_generated, want.accuracy.n_generated);
    EXPECT_EQ(got.accuracy.matched_prefix, want.accuracy.matched_prefix);
    EXPECT_EQ(got.accuracy.exact_match, want.accuracy.exact_match);
    EXPECT_EQ(got.accuracy.kl_sum, want.accuracy.kl_sum);
    EXPECT_EQ(got.accuracy.nll_full_sum, want.accuracy.nll_full_sum);
    EXPECT_EQ(got.accuracy.nll_skip_sum, want.accuracy.nll_skip_sum);
  }
  ASSERT_EQ(g.steps.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const StepRecord &got = g.steps[i], &want = p.steps[i];
    EXPECT_EQ(got.step, want.step);
    EXPECT_EQ(got.rank, want.rank);
    EXPECT_EQ(got.n_requests, want.n_requests);
    EXPECT_EQ(got.n_tokens, want.n_tokens);
    EXPECT_EQ(got.flops_full, want.flops_full);
    EXPECT_EQ(got.flops_executed, want.flops_executed);
    EXPECT_EQ(got.flops_overhead, want.flops_overhead);
    EXPECT_EQ(got.t_full_ns, want.t_full_ns);
    EXPECT_EQ(got.t_skip_ns, want.t_skip_ns);
    EXPECT_EQ(got.t_lookup_ns, want.t_lookup_ns);
    EXPECT_EQ(got.t_comm_ns, want.t_comm_ns);
    EXPECT_EQ(got.comm_sent_bytes, want.comm_sent_bytes);
    EXPECT_EQ(got.comm_recv_bytes, want.comm_recv_bytes);
    EXPECT_EQ(got.t_full_comm_ns, want.t_full_comm_ns);
    EXPECT_EQ(got.cache_lookups, want.cache_lookups);
    EXPECT_EQ(got.cache_hits, want.cache_hits);
    EXPECT_EQ(got.cache_vetoed, want.cache_vetoed);
    EXPECT_EQ(got.cache_size, want.cache_size);
  }
  EXPECT_EQ(g.layers.n_block_run, (std::vector<int64_t>{11, 5}));
  EXPECT_EQ(g.layers.n_block_skip, (std::vector<int64_t>{0, 6}));
  EXPECT_EQ(g.layers.n_mlp_skip, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(g.layers.n_kv_propagated, (std::vector<int64_t>{0, 6}));
  EXPECT_EQ(g.layer_flops_full, (std::vector<int64_t>{1000, 500}));
  // Per layer, the model's own operations that ran, and apart from them the overheads charged to it.
  EXPECT_EQ(g.layer_flops_executed, (std::vector<int64_t>{400, 300}));
  EXPECT_EQ(g.layer_flops_overhead, (std::vector<int64_t>{30, 20}));
}

TEST(RunConfig, DefaultsAreTheDocumentedOnes) {
  const RunConfig c;
  EXPECT_EQ(c.dtype, "fp32");
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.chunk, 128);
  EXPECT_EQ(c.max_requests, 40);
  EXPECT_EQ(c.calib_requests, 8);
  EXPECT_EQ(c.batch, 1);
  EXPECT_EQ(c.max_new_tokens, 0);
  EXPECT_EQ(c.capacity, 4096);
  EXPECT_EQ(c.seed, 0u);
  EXPECT_EQ(c.report, "semskip-run.h5");
  EXPECT_EQ(c.cache_mode, "local");
  EXPECT_EQ(c.sync, "token");
  EXPECT_EQ(c.ep, 1);
  EXPECT_EQ(c.shard, "round-robin");
  EXPECT_EQ(c.shard_of, 0);
  EXPECT_TRUE(c.policies.empty());
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(RunConfig::default_policies().size(), 4u);
}

TEST(RunPlan, ResolvesEveryOptionOnceIntoItsType) {
  RunConfig c;
  c.model = "m", c.dtype = "bf16", c.device = "cpu", c.workload = "";
  c.policies = {"residual:tau=0.950,r=7,p=2", "none"}, c.cache_mode = "sharded", c.sync = "batch:0.50";
  c.shard = "balanced", c.chunk = 64;
  const RunPlan p = RunPlan::resolve(c);
  EXPECT_EQ(p.dtype, DType::bf16);
  EXPECT_EQ(p.device, at::Device(at::kCPU));
  EXPECT_EQ(p.workload.kind(), "text");
  EXPECT_EQ(p.workload.get_int("chunk"), 64);  // --chunk applies to a text workload without chunk=
  ASSERT_EQ(p.policies.size(), 2u);
  EXPECT_EQ(p.policies[0].text(), "residual:p=2,r=7,tau=0.95");
  EXPECT_EQ(p.policies[1].text(), "none");
  EXPECT_EQ(p.indexes, (std::vector<std::string>{"torch:flat"}));
  EXPECT_EQ(p.cache_mode, CacheMode::sharded);
  EXPECT_EQ(p.sync.describe(), "batch:0.5");
  EXPECT_EQ(p.shard, ShardStrategy::balanced);
  const RunPlan d = RunPlan::resolve(RunConfig{});
  EXPECT_EQ(d.policies.size(), RunConfig::default_policies().size());
  EXPECT_FALSE(d.model.empty());  // the embedded model
  // Unparseable text is refused with the option named.
  RunConfig bad;
  bad.dtype = "fp8";
  EXPECT_THROW(RunPlan::resolve(bad), Error);
  bad = RunConfig{};
  bad.cache_mode = "everywhere";
  EXPECT_THROW(RunPlan::resolve(bad), Error);
  bad = RunConfig{};
  bad.shard = "diagonal";
  EXPECT_ANY_THROW(RunPlan::resolve(bad));
}

TEST(RunPlan, JsonKeysAreTheOptionTableAndRoundTrip) {
  RunConfig c;
  c.model = "m", c.random_init = true, c.dtype = "bf16", c.device = "cpu", c.workload = "text,chunk=64";
  c.chunk = 64, c.max_requests = 3, c.calib_requests = 2, c.batch = 4, c.max_new_tokens = 5;
  c.policies = {"none", "static:k=1"}, c.indexes = {"torch:flat", "faiss:Flat"}, c.capacity = 17;
  c.bootstrap = 9, c.seed = 123456789012345ULL, c.threads = 2, c.report = "r.h5", c.cache_mode = "sharded";
  c.sync = "batch:0.5", c.ep = 2, c.shard = "balanced", c.shard_of = 3, c.shard_index = 2, c.json = true;
  c.split = "0.25", c.orders = 3, c.target_agreement = 0.8;
  c.dtype = "fp16", c.comm = "mpi";
  const nlohmann::json j = RunPlan::resolve(c).to_json();
  std::set<std::string> keys, table;
  for (const auto& item : j.items()) keys.insert(item.key());
  for (const RunOptionInfo& o : run_option_table()) table.insert(o.key);
  EXPECT_EQ(keys, table);
  EXPECT_EQ(table.size(), 31u);  // with split, tune_workload, target_agreement, orders, comm, skip_exec
  const RunPlan d = RunPlan::from_json(j);
  EXPECT_EQ(d.to_json(), j);
  EXPECT_EQ(d.seed, 123456789012345ULL);
  EXPECT_EQ(j.at("policies"), (nlohmann::json{"none", "static:k=1"}));
  EXPECT_EQ(j.at("indexes"), (nlohmann::json{"torch:flat", "faiss:Flat"}));
  EXPECT_EQ(j.at("device"), "cpu");
  EXPECT_EQ(j.at("dtype"), "fp16");
  EXPECT_EQ(j.at("workload"), RunPlan::resolve(c).workload.describe());
  EXPECT_EQ(j.at("cache_mode"), "sharded");
  EXPECT_EQ(j.at("shard"), "balanced");
  EXPECT_EQ(j.at("comm"), "mpi");
  EXPECT_EQ(j.at("split"), "tune=0.25");
  EXPECT_EQ(j.at("orders"), 3);
  EXPECT_EQ(d.shard_index, 2);
  EXPECT_TRUE(d.json);
  for (const auto& item : j.items()) {
    nlohmann::json missing = j;
    missing.erase(item.key());
    // Reports written before --max-model-len existed lack it: their runs used the model's limit.
    if (item.key() == "max_model_len") {
      EXPECT_EQ(RunPlan::from_json(missing).max_model_len, 0);
      continue;
    }
    // Likewise --skip-exec: their runs gathered the rows that run.
    if (item.key() == "skip_exec") {
      EXPECT_EQ(RunPlan::from_json(missing).row_exec, RowExec::gather);
      continue;
    }
    // Likewise --comm: their runs used MPI, which auto picks on CPU.
    if (item.key() == "comm") {
      EXPECT_EQ(RunPlan::from_json(missing).comm, "auto");
      continue;
    }
    // Likewise the tune/eval protocol: their runs had no split, no tune workload, one order.
    if (item.key() == "split" || item.key() == "tune_workload" || item.key() == "target_agreement" ||
        item.key() == "orders") {
      const RunPlan p = RunPlan::from_json(missing);
      if (item.key() == "split") EXPECT_EQ(p.split_fraction, 0.0);
      if (item.key() == "tune_workload") EXPECT_EQ(p.tune_workload, "");
      if (item.key() == "target_agreement") EXPECT_DOUBLE_EQ(p.target_agreement, 0.90);
      if (item.key() == "orders") EXPECT_EQ(p.orders, 1);
      continue;
    }
    EXPECT_ANY_THROW(RunPlan::from_json(missing)) << item.key();
  }
}

TEST(RunOptionTable, DefaultsAreRunConfigsAndTheCacheDefaultsOneConstant) {
  const RunConfig c;
  std::map<std::string, std::string> def;
  for (const RunOptionInfo& o : run_option_table()) {
    def[o.key] = o.default_text;
    std::string flag = "--" + o.key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (o.key == "policies") flag = "--policy";
    if (o.key == "indexes") flag = "--index";
    EXPECT_EQ(o.flag, flag);
    EXPECT_FALSE(o.help.empty()) << o.key;
    EXPECT_EQ(find_run_option(flag.substr(2)), &o);  // the key and the flag, '-' or '_'
    std::string snake = flag.substr(2);
    std::replace(snake.begin(), snake.end(), '-', '_');
    EXPECT_EQ(find_run_option(snake), &o);
    EXPECT_EQ(find_run_option(o.key), &o);
  }
  EXPECT_EQ(def.at("chunk"), "128");
  EXPECT_EQ(def.at("max_requests"), "40");
  EXPECT_EQ(def.at("calib_requests"), "8");
  EXPECT_EQ(def.at("capacity"), "4096");
  EXPECT_EQ(def.at("dtype"), "fp32");
  EXPECT_EQ(def.at("report"), "semskip-run.h5");
  EXPECT_EQ(def.at("indexes"), "torch:flat");
  EXPECT_EQ(def.at("sync"), "token");
  EXPECT_EQ(def.at("shard"), "round-robin");
  EXPECT_EQ(find_run_option("config"), nullptr);
  // One default index and one capacity for the run, PolicyEnv and CacheOptions.
  EXPECT_EQ(std::string(kDefaultIndexDescriptor), "torch:flat");
  EXPECT_EQ(kDefaultCacheCapacity, 4096);
  EXPECT_EQ(c.capacity, kDefaultCacheCapacity);
  EXPECT_EQ(PolicyEnv{}.index_descriptor, kDefaultIndexDescriptor);
  EXPECT_EQ(PolicyEnv{}.capacity, kDefaultCacheCapacity);
  EXPECT_EQ(CacheOptions{}.index_descriptor, kDefaultIndexDescriptor);
  EXPECT_EQ(CacheOptions{}.capacity, kDefaultCacheCapacity);
}

TEST(RunPlan, PermutedDescriptorsBuildPoliciesThatDescribeThemselvesAlike) {
  PolicyEnv env;
  env.n_layers = 10, env.hidden = 16;
  const std::vector<std::pair<std::string, std::string>> same = {
      {"residual:tau=0.95,p=2,r=7", "residual:p=2,r=7,tau=0.95"},
      {"residual:cap=8192,kdim=8,proj=random,target=mlp,tau=0.980,r=8,p=2",
       "residual:p=2,r=8,tau=0.98,target=mlp,proj=random,kdim=8,cap=8192"},
      {"random:seed=3,rate=1e-1", "random:rate=0.1,seed=3"},
      {"plan:tau=0.9,beta=0.05,p=2", "plan:p=2,beta=0.05,tau=0.9"},
      {"static:layers=05+7", "static:layers=5+7"},
      {"oracle:kv=mask,eps=.1", "oracle:eps=0.1,kv=mask"},
  };
  for (const auto& [permuted, canonical] : same) {
    const std::string a = make_policy(permuted, env)->describe();
    const std::string b = make_policy(canonical, env)->describe();
    EXPECT_EQ(a, canonical) << permuted;
    EXPECT_EQ(b, canonical);
  }
  // The rows of a report carry describe(): two runs of permuted descriptors give the same row.
  auto row_of = [&](const std::string& desc) {
    GatheredResult g = two_ranks();
    g.policy = make_policy(desc, env)->describe();
    return column<std::string>(summary_table({summarize(g, 10, 1)}), "policy");
  };
  EXPECT_EQ(row_of("residual:tau=0.95,r=7,p=2"), (std::vector<std::string>{"residual:p=2,r=7,tau=0.95"}));
  EXPECT_EQ(row_of("residual:tau=0.95,r=7,p=2"), row_of("residual:p=2,r=7,tau=0.95"));
}

TEST(PolicyRequirements, OneCheckForCalibrationAndTeacherForcing) {
  PolicyEnv env;
  env.n_layers = 10, env.hidden = 16;
  const auto stat = make_policy("static:k=1", env);
  const auto oracle = make_policy("oracle:eps=0.1", env);
  const auto none = make_policy("none", env);
  EXPECT_NO_THROW(check_policy_requirements(*none, false, 5));
  EXPECT_NO_THROW(check_policy_requirements(*stat, true, 5));
  try {
    check_policy_requirements(*stat, false, 0);
    ADD_FAILURE() << "static:k without calibration accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("policy 'static:k=1' needs calibration requests (--calib-requests > 0)"),
              std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_policy_requirements(*oracle, false, 0));
  try {
    check_policy_requirements(*oracle, true, 3);
    ADD_FAILURE() << "oracle with generation accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("runs in teacher-forced evaluation only (max-new-tokens 0)"),
              std::string::npos) << e.what();
  }
}

TEST(RunConfig, RefusalsNameTheOptionAndTheValue) {
  struct Case {
    void (*set)(RunConfig&);
    const char* message;
  };
  const std::vector<Case> cases = {
      {[](RunConfig& c) { c.chunk = 1; }, "--chunk must be ≥ 2, got 1"},
      {[](RunConfig& c) { c.max_requests = -1; }, "--max-requests must be ≥ 0, got -1"},
      {[](RunConfig& c) { c.calib_requests = -2; }, "--calib-requests must be ≥ 0, got -2"},
      {[](RunConfig& c) { c.batch = 0; }, "--batch must be ≥ 1, got 0"},
      {[](RunConfig& c) { c.max_new_tokens = -1; }, "--max-new-tokens must be ≥ 0, got -1"},
      {[](RunConfig& c) { c.capacity = 0; }, "--capacity must be ≥ 1, got 0"},
      {[](RunConfig& c) { c.bootstrap = 0; }, "--bootstrap must be ≥ 1, got 0"},
      {[](RunConfig& c) { c.threads = -1; }, "--threads must be ≥ 0, got -1"},
      {[](RunConfig& c) { c.ep = 0; }, "--ep must be ≥ 1, got 0"},
      {[](RunConfig& c) { c.comm = "gloo"; }, "--comm: expected auto, mpi or nccl, got 'gloo'"},
      {[](RunConfig& c) { c.split = "half"; }, "--split: expected F or tune=F"},
      {[](RunConfig& c) { c.split = "0.5", c.tune_workload = "text"; }, "--split and --tune-workload both name a tune part"},
      {[](RunConfig& c) { c.orders = 0; }, "--orders must be ≥ 1, got 0"},
      {[](RunConfig& c) { c.target_agreement = 1.5; }, "--target-agreement must be in [0, 1], got 1.5"},
      {[](RunConfig& c) { c.shard_of = -1; }, "--shard-of must be ≥ 0, got -1"},
      {[](RunConfig& c) { c.shard_index = 1; }, "--shard-index needs --shard-of"},
      {[](RunConfig& c) { c.shard_of = 2, c.shard_index = 2; }, "--shard-index must be in 0..1 (--shard-of 2), got 2"},
  };
  for (const Case& k : cases) {
    RunConfig c;
    k.set(c);
    try {
      c.validate();
      ADD_FAILURE() << "accepted: " << k.message;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(k.message), std::string::npos) << e.what();
    }
  }
  RunConfig edge;  // the boundaries themselves are accepted
  edge.chunk = 2, edge.max_requests = 0, edge.calib_requests = 0, edge.capacity = 1, edge.shard_of = 2;
  edge.shard_index = 1;
  EXPECT_NO_THROW(edge.validate());
}
