// The server loop on tiny-dense (fp32, CPU) against independent paths: with no policy every
// request's tokens equal generate_greedy of its prompt alone (chunked and whole prefill, an
// ample pool and one that forces pre-emption); with a static policy they equal the skip
// engine's unbatched run of the prompt alone; a residual policy's cache lives across requests;
// refusals, end tokens, concurrency and lockstep empty steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <numeric>

#include "../model/model_test_util.h"
#include "core/error.h"
#include "engine/skip_engine.h"
#include "model/generation.h"
#include "serve/server.h"
#include "skip/baseline_policies.h"
#include "skip/descriptor.h"
#include "tokenizer/tokenizer.h"

using namespace semskip;
using namespace semskip::serve;
using namespace semskip::test;

namespace {

const Transformer& tiny() {
  static const Transformer m = [] {
    ModelOptions o;
    o.dtype = DType::fp32;
    return Transformer::load(embedded_model("tiny-dense"), o);
  }();
  return m;
}

// Real text of the held-out sample, tokenized.
const std::vector<int32_t>& text() {
  static const std::vector<int32_t> ids = [] {
    const Tokenizer tok = Tokenizer::from_file(embedded_model("tiny-dense") + "/tokenizer.json");
    return tok.encode(read_file(std::string(SEMSKIP_SOURCE_DIR) + "/workloads/samples/heldout_sample.txt").substr(0, 20000));
  }();
  return ids;
}

ServeRequest request(int64_t id, int64_t offset, int64_t n_prompt, int64_t n_new, double arrival) {
  ServeRequest r;
  r.id = id;
  r.prompt.assign(text().begin() + offset, text().begin() + offset + n_prompt);
  r.max_new_tokens = n_new;
  r.arrival_s = arrival;
  r.where = "test:" + std::to_string(id);
  return r;
}

// Six requests of different lengths, some arriving while others run.
std::vector<ServeRequest> workload() {
  const std::vector<int64_t> len = {5, 17, 33, 9, 40, 23}, gen = {12, 8, 16, 5, 10, 14};
  const std::vector<double> at = {0.0, 0.0, 0.01, 0.02, 0.0, 0.05};
  std::vector<ServeRequest> rs;
  for (size_t i = 0; i < len.size(); ++i)
    rs.push_back(request(100 + static_cast<int64_t>(i), 50 * static_cast<int64_t>(i), len[i], gen[i], at[i]));
  return rs;
}

std::vector<int64_t> generate_alone(const ServeRequest& r) {
  GenerateOptions g;
  g.max_new_tokens = r.max_new_tokens;
  return generate_greedy(tiny(), {std::vector<int64_t>(r.prompt.begin(), r.prompt.end())}, g).tokens[0];
}

// The skip engine's own greedy run of one prompt (dense cache, no batching, no paging).
std::vector<int64_t> engine_alone(const ServeRequest& r, SkipPolicy& policy) {
  const Transformer& m = tiny();
  const int64_t L = m.n_layers(), d = m.config().hidden_size, T = static_cast<int64_t>(r.prompt.size());
  SkipEngine e(m);
  KvCache kv = e.make_cache(1, T + r.max_new_tokens);
  const at::Tensor ids = at::tensor(std::vector<int64_t>(r.prompt.begin(), r.prompt.end()), at::kLong).unsqueeze(0);
  StepContext ctx(L, d, at::ones({1, T}, at::kBool), {0}, true);
  policy.begin_request(0);
  const at::Tensor first = e.step(ids, ctx, kv, policy, nullptr, nullptr).select(1, T - 1).argmax(-1);
  GreedyLoop loop;
  loop.max_new_tokens = r.max_new_tokens;
  loop.step = [&](const at::Tensor& tokens, const at::Tensor& live) {
    StepContext c(L, d, live, {0}, false);
    return e.step(tokens, c, kv, policy, nullptr, nullptr);
  };
  return decode_greedy(first, loop)[0];
}

int64_t sum_prompt(const std::vector<ServeRequest>& rs) {
  int64_t n = 0;
  for (const ServeRequest& r : rs) n += static_cast<int64_t>(r.prompt.size());
  return n;
}

// What every run's records must satisfy.
void check_records(const ServeResult& res, const std::vector<ServeRequest>& rs, const ServeOptions& o) {
  ASSERT_EQ(res.requests.size(), rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    const RequestRecord& rec = res.requests[i];
    if (!rec.error.empty()) continue;
    EXPECT_EQ(rec.id, rs[i].id);
    EXPECT_TRUE(rec.ok()) << rec.id;
    EXPECT_GE(rec.arrival_s, rs[i].arrival_s);
    EXPECT_GE(rec.scheduled_s, rec.arrival_s);
    EXPECT_GT(rec.first_token_s, rec.scheduled_s);
    EXPECT_EQ(rec.token_times_s.size(), rec.output_tokens.size());
    EXPECT_TRUE(std::is_sorted(rec.token_times_s.begin(), rec.token_times_s.end()));
    EXPECT_DOUBLE_EQ(rec.token_times_s.front(), rec.first_token_s);
    EXPECT_DOUBLE_EQ(rec.token_times_s.back(), rec.finish_s);
  }
  for (const StepRecord& s : res.steps) {
    EXPECT_LE(s.n_prefill_tokens + s.n_decode_tokens, o.max_num_batched_tokens);
    EXPECT_LE(s.n_seqs, o.max_num_seqs);
    EXPECT_LE(s.n_kv_blocks_used, res.n_kv_blocks);
    EXPECT_EQ(static_cast<int64_t>(s.rows_skipping.size()), tiny().n_layers());
    EXPECT_GE(s.duration_s, 0.0);
    // The phases cut the step's duration: each is read off the same clock.
    for (double t : {s.t_schedule_s, s.t_prepare_s, s.t_forward_s, s.t_finish_s}) EXPECT_GE(t, 0.0);
    EXPECT_NEAR(s.t_schedule_s + s.t_prepare_s + s.t_forward_s + s.t_finish_s, s.duration_s, 1e-9);
    if (s.n_seqs > 0) EXPECT_GT(s.t_forward_s, 0.0);
  }
  EXPECT_GE(res.duration_s, res.steps.back().start_s);
}

struct Case {
  const char* name;
  bool chunked;
  int64_t budget, num_blocks;  // 0 blocks: derived (ample)
  bool expect_preemption;
};

class ServerNoPolicy : public ::testing::TestWithParam<Case> {};

}  // namespace

// Each request's tokens are generate_greedy's on its prompt alone, however the steps mixed,
// chunked, pre-empted and recomputed it; the FLOPs executed are the full model's.
TEST_P(ServerNoPolicy, TokensEqualGenerateGreedyAlone) {
  const Case c = GetParam();
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 64;
  o.max_num_seqs = 4;
  o.max_num_batched_tokens = c.budget;
  o.enable_chunked_prefill = c.chunked;
  o.num_kv_blocks = c.num_blocks;
  const std::vector<ServeRequest> rs = workload();
  Server server(tiny(), nullptr, o);
  const ServeResult res = server.run(rs);
  check_records(res, rs, server.options());
  EXPECT_EQ(res.policy, "none");
  int64_t n_out = 0;
  for (size_t i = 0; i < rs.size(); ++i) {
    EXPECT_EQ(res.requests[i].output_tokens, generate_alone(rs[i])) << c.name << " request " << rs[i].id;
    EXPECT_EQ(res.requests[i].finish_reason, "length");
    n_out += rs[i].max_new_tokens;
  }
  if (c.expect_preemption) {
    EXPECT_GT(res.n_preemptions, 0) << c.name;
  } else {
    EXPECT_EQ(res.n_preemptions, 0) << c.name;
  }
  int64_t computed = 0, preempted = 0, peak_seqs = 0;
  for (const StepRecord& s : res.steps) {
    computed += s.n_prefill_tokens + s.n_decode_tokens;
    preempted += s.n_preempted;
    peak_seqs = std::max(peak_seqs, s.n_seqs);
  }
  EXPECT_EQ(preempted, res.n_preemptions);
  EXPECT_GT(peak_seqs, 1);  // continuous batching did batch
  // Steady decoding ran on the carried dense cache, not on a gather.
  int64_t carried = 0;
  for (const StepRecord& s : res.steps) carried += s.kv_gathered ? 0 : 1;
  EXPECT_GT(carried, 0) << c.name;
  // Every prompt token and every output but the last computed once, recomputations on top.
  const int64_t once = sum_prompt(rs) + n_out - static_cast<int64_t>(rs.size());
  if (res.n_preemptions == 0) EXPECT_EQ(computed, once);
  else EXPECT_GT(computed, once);
  EXPECT_EQ(res.flops_executed, res.flops_full);
  EXPECT_EQ(res.flops_overhead, 0);
  for (int64_t l = 0; l < tiny().n_layers(); ++l) EXPECT_EQ(res.counts.n_block_skip[static_cast<size_t>(l)], 0);
}

INSTANTIATE_TEST_SUITE_P(Serve, ServerNoPolicy,
                         ::testing::Values(Case{"chunked", true, 16, 0, false},
                                           Case{"whole", false, 64, 0, false},
                                           // 16 blocks of 4: one sequence of max_model_len 64
                                           Case{"chunked_tiny_pool", true, 16, 16, true},
                                           Case{"whole_tiny_pool", false, 64, 16, true}),
                         [](const auto& info) { return std::string(info.param.name); });

// static:layers=3+4 skips those blocks for every token (their keys hidden there): the server's
// tokens equal the skip engine's unbatched run, also through pre-emption, and every computed
// token is counted as skipping exactly those layers.
TEST(Server, StaticPolicyMatchesTheEngineAlone) {
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 64;
  o.max_num_seqs = 4;
  o.max_num_batched_tokens = 16;
  o.num_kv_blocks = 16;
  const std::vector<ServeRequest> rs = workload();
  StaticPolicy policy(Descriptor::parse("static:layers=3+4"), tiny().n_layers());
  Server server(tiny(), &policy, o);
  const ServeResult res = server.run(rs);
  check_records(res, rs, server.options());
  EXPECT_EQ(res.policy, "static:layers=3+4");
  EXPECT_GT(res.n_preemptions, 0);
  StaticPolicy alone(Descriptor::parse("static:layers=3+4"), tiny().n_layers());
  for (size_t i = 0; i < rs.size(); ++i) {
    EXPECT_EQ(res.requests[i].output_tokens, engine_alone(rs[i], alone)) << "request " << rs[i].id;
    const RequestRecord& rec = res.requests[i];
    // Two layers per computed token: at least its prompt and its outputs but the last.
    EXPECT_GE(rec.n_prompt_tokens_skipped, 2 * rec.n_prompt_tokens);
    EXPECT_GE(rec.n_output_tokens_skipped, 2 * (rs[i].max_new_tokens - 1));
  }
  int64_t computed = 0;
  for (const StepRecord& s : res.steps) {
    const int64_t n = s.n_prefill_tokens + s.n_decode_tokens;
    computed += n;
    for (int64_t l = 0; l < tiny().n_layers(); ++l)
      EXPECT_EQ(s.rows_skipping[static_cast<size_t>(l)], (l == 3 || l == 4) ? n : 0) << "step " << s.index << " layer " << l;
  }
  EXPECT_EQ(res.counts.n_block_skip[3], computed);
  EXPECT_EQ(res.counts.n_block_run[3], 0);
  EXPECT_EQ(res.counts.n_block_run[5], computed);
  EXPECT_LT(res.flops_executed, res.flops_full);
}

// workload() served twice under policy `text` ("none" or a static policy) on small options
// (num_blocks 16 forces pre-emption), `vary` setting one knob off and on: the results, each
// run's records checked; the two runs' tokens and skip counts compared.
std::vector<ServeResult> serve_both_ways(const char* text, int64_t num_blocks,
                                         const std::function<void(ServeOptions&, bool)>& vary) {
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 64;
  o.max_num_seqs = 4;
  o.max_num_batched_tokens = 16;
  o.num_kv_blocks = num_blocks;
  const std::vector<ServeRequest> rs = workload();
  std::vector<ServeResult> res;
  for (bool on : {true, false}) {
    vary(o, on);
    std::unique_ptr<StaticPolicy> policy;
    if (std::string(text) != "none") policy = std::make_unique<StaticPolicy>(Descriptor::parse(text), tiny().n_layers());
    Server server(tiny(), policy.get(), o);
    res.push_back(server.run(rs));
    check_records(res.back(), rs, server.options());
  }
  for (size_t i = 0; i < rs.size(); ++i)
    EXPECT_EQ(res[0].requests[i].output_tokens, res[1].requests[i].output_tokens) << text << " request " << rs[i].id;
  EXPECT_EQ(res[0].counts.n_block_skip, res[1].counts.n_block_skip) << text;
  EXPECT_EQ(res[0].counts.n_block_run, res[1].counts.n_block_run) << text;
  return res;
}

// A decoding step that runs on the previous step's dense cache (no gather from the pool) is
// invisible in the results: with every step gathering instead, the tokens, FLOPs and skip
// counts are the same, with no policy and with keys hidden at skipped layers, through
// pre-emption.
TEST(Server, CarriedDenseCacheMatchesGathering) {
  for (const char* text : {"none", "static:layers=3+4"}) {
    const std::vector<ServeResult> res =
        serve_both_ways(text, 16, [](ServeOptions& o, bool on) { o.carry_dense_kv = on; });
    for (size_t r = 0; r < 2; ++r) {
      int64_t carried = 0;
      for (const StepRecord& s : res[r].steps) carried += s.kv_gathered ? 0 : 1;
      if (r == 0) EXPECT_GT(carried, 0) << text;
      else EXPECT_EQ(carried, 0) << text;
    }
    EXPECT_GT(res[0].n_preemptions, 0) << text;
    EXPECT_EQ(res[0].flops_executed, res[1].flops_executed) << text;
    EXPECT_EQ(res[0].n_preemptions, res[1].n_preemptions) << text;
  }
}

// Fixed-shape decoding of policy none (the steps a CUDA graph replays, run eagerly here):
// every request's tokens are still generate_greedy's alone, through batch changes and
// pre-emption, and the FLOPs executed are the full model's.
TEST(Server, FixedShapeDecodingGivesGenerateGreedyTokens) {
  for (int64_t blocks : {0, 16}) {
    ServeOptions o;
    o.block_size = 4;
    o.max_model_len = 64;
    o.max_num_seqs = 4;
    o.max_num_batched_tokens = 16;
    o.num_kv_blocks = blocks;
    o.decode = DecodeMode::fixed;
    const std::vector<ServeRequest> rs = workload();
    Server server(tiny(), nullptr, o);
    const ServeResult res = server.run(rs);
    check_records(res, rs, server.options());
    for (size_t i = 0; i < rs.size(); ++i)
      EXPECT_EQ(res.requests[i].output_tokens, generate_alone(rs[i])) << "blocks " << blocks << " request " << rs[i].id;
    int64_t fixed = 0;
    for (const StepRecord& s : res.steps) {
      fixed += s.fixed_shape ? 1 : 0;
      if (s.fixed_shape) EXPECT_EQ(s.n_decode_tokens, s.n_seqs);
    }
    EXPECT_GT(fixed, 0) << "blocks " << blocks;
    if (blocks > 0) EXPECT_GT(res.n_preemptions, 0);
    EXPECT_EQ(res.flops_executed, res.flops_full);
  }
  // graph needs a CUDA device.
  ServeOptions g;
  g.decode = DecodeMode::graph;
  g.max_model_len = 64;
  EXPECT_THROW(Server(tiny(), nullptr, g), Error);
}

// A whole-layer static policy decodes in fixed-shape steps without its layers: the tokens,
// skip counts and FLOPs executed are the eager engine's, through pre-emption, and some steps
// were fixed-shape; a per-token policy, and any policy under --skip-exec mask, keeps the
// engine's forward.
TEST(Server, StaticPolicyDecodesInFixedShapeStepsAsTheEngine) {
  for (int64_t blocks : {0, 16}) {
    const std::vector<ServeResult> res = serve_both_ways(
        "static:layers=3+4", blocks, [](ServeOptions& o, bool on) { o.decode = on ? DecodeMode::fixed : DecodeMode::eager; });
    int64_t fixed = 0;
    for (const StepRecord& s : res[0].steps) fixed += s.fixed_shape ? 1 : 0;
    for (const StepRecord& s : res[1].steps) EXPECT_FALSE(s.fixed_shape);
    EXPECT_GT(fixed, 0) << "blocks " << blocks;
    EXPECT_EQ(res[0].flops_executed, res[1].flops_executed) << "blocks " << blocks;
    EXPECT_EQ(res[0].flops_full, res[1].flops_full) << "blocks " << blocks;
    EXPECT_LT(res[0].flops_executed, res[0].flops_full) << "blocks " << blocks;
    if (blocks > 0) EXPECT_GT(res[0].n_preemptions, 0);
  }
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 64;
  o.decode = DecodeMode::fixed;
  RandomPolicy random(Descriptor::parse("random:rate=0.3"), tiny().n_layers(), 1);
  Server server(tiny(), &random, o);
  const ServeResult res = server.run(workload());
  for (const StepRecord& s : res.steps) EXPECT_FALSE(s.fixed_shape);
  // Under --skip-exec mask skipped layers run and are dropped: no step leaves them out.
  o.row_exec = RowExec::mask;
  StaticPolicy fixed_layers(Descriptor::parse("static:layers=3+4"), tiny().n_layers());
  Server masked(tiny(), &fixed_layers, o);
  const ServeResult mres = masked.run(workload());
  for (const StepRecord& s : mres.steps) EXPECT_FALSE(s.fixed_shape);
  EXPECT_EQ(mres.flops_executed, mres.flops_full);
}

// A step that mixes decodes with prompt chunks runs them as two forwards (decodes not padded
// to the chunks' length) or as one: the tokens and skip counts are the same.
TEST(Server, SplitMixedStepsMatchOneForward) {
  for (const char* text : {"none", "static:layers=3+4"}) {
    const std::vector<ServeResult> res =
        serve_both_ways(text, 0, [](ServeOptions& o, bool on) { o.split_mixed_steps = on; });
    for (size_t r = 0; r < 2; ++r) {
      const bool split = r == 0;
      int64_t two = 0;
      for (const StepRecord& s : res[r].steps) {
        const int64_t n_chunks = s.n_seqs - s.n_decode_tokens;  // rows computing prompt tokens
        if (!split || n_chunks == 0) EXPECT_EQ(s.n_forwards, 1) << text << " step " << s.index;
        // Decodes beside a chunk of more than one token.
        else if (s.n_decode_tokens > 0 && s.n_prefill_tokens > n_chunks) EXPECT_EQ(s.n_forwards, 2) << text << " step " << s.index;
        two += s.n_forwards == 2;
      }
      if (split) EXPECT_GT(two, 0) << text;
    }
  }
}

// A residual cache lives for the whole run: a prompt served again after its first copy
// was prefilled finds its own tokens' entries (identical residuals at the probe), so its tokens
// skip blocks 3..5; no token skips outside them, and the late copy waits for its arrival.
TEST(Server, ResidualCacheLivesAcrossRequests) {
  ServeOptions o;
  o.block_size = 8;
  o.max_model_len = 128;
  o.max_num_batched_tokens = 64;
  o.max_num_seqs = 8;
  PolicyEnv env;
  env.n_layers = tiny().n_layers();
  env.hidden = tiny().config().hidden_size;
  env.capacity = 4096;
  auto policy = make_policy("residual:p=2,r=5,tau=0.99,kv=mask", env);
  std::vector<ServeRequest> rs = {request(1, 0, 48, 6, 0.0), request(2, 400, 30, 6, 0.0), request(3, 0, 48, 6, 0.3)};
  Server server(tiny(), policy.get(), o);
  const ServeResult res = server.run(rs);
  check_records(res, rs, server.options());
  EXPECT_GT(res.cache.hits, 0);
  EXPECT_GT(res.cache.insertions, 0);
  // The repeat arrives after the first copy's prefill (step 1) and skips most of its prompt.
  EXPECT_GE(res.requests[2].scheduled_s, 0.3);
  EXPECT_GE(res.requests[2].n_prompt_tokens_skipped, 3 * 40);
  int64_t skipping = 0;
  for (const StepRecord& s : res.steps)
    for (int64_t l = 0; l < tiny().n_layers(); ++l) {
      if (l < 3 || l > 5) EXPECT_EQ(s.rows_skipping[static_cast<size_t>(l)], 0);
      else skipping += s.rows_skipping[static_cast<size_t>(l)];
    }
  EXPECT_GE(skipping, 3 * 40);
  EXPECT_LT(res.flops_executed - res.flops_overhead, res.flops_full);
  EXPECT_GT(res.flops_overhead, 0);
  // A second run of the same server keeps the cache: the first prompt now hits at once.
  const CacheStats before = res.cache;
  const ServeResult again = server.run({request(7, 0, 48, 2, 0.0)});
  EXPECT_GE(again.cache.hits - before.hits, 40);
  EXPECT_GE(again.requests[0].n_prompt_tokens_skipped, 3 * 40);
}

// Requests that cannot be served get an error record, the others are served; contract
// breaches and impossible options throw, naming what is wrong.
TEST(Server, RefusalsAndErrors) {
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 32;
  std::vector<ServeRequest> rs = {request(1, 0, 10, 4, 0.0), request(2, 0, 30, 3, 0.0), request(3, 0, 5, 3, 0.0),
                                  request(4, 0, 5, 0, 0.0), request(5, 0, 5, 2, 0.0)};
  rs[2].prompt.clear();
  rs[4].prompt[2] = 4096;  // tiny-dense's vocabulary is 4096
  Server server(tiny(), nullptr, o);
  const ServeResult res = server.run(rs);
  EXPECT_TRUE(res.requests[0].ok());
  EXPECT_EQ(res.requests[0].output_tokens, generate_alone(rs[0]));
  for (size_t i = 1; i < rs.size(); ++i) {
    EXPECT_FALSE(res.requests[i].ok());
    EXPECT_EQ(res.requests[i].finish_reason, "error");
    EXPECT_TRUE(res.requests[i].output_tokens.empty());
    EXPECT_NE(res.requests[i].error.find("test:" + std::to_string(rs[i].id)), std::string::npos) << res.requests[i].error;
  }
  EXPECT_NE(res.requests[1].error.find("exceed max_model_len 32"), std::string::npos) << res.requests[1].error;
  EXPECT_NE(res.requests[2].error.find("empty"), std::string::npos);
  EXPECT_NE(res.requests[3].error.find("max_new_tokens must be >= 1"), std::string::npos);
  EXPECT_NE(res.requests[4].error.find("token id 4096 outside the vocabulary"), std::string::npos);

  std::vector<ServeRequest> dup = {request(1, 0, 5, 2, 0.0), request(1, 9, 5, 2, 0.0)};
  EXPECT_THROW(server.run(dup), Error);
  std::vector<ServeRequest> bad_time = {request(1, 0, 5, 2, -1.0)};
  EXPECT_THROW(server.run(bad_time), Error);

  ServeOptions small = o;
  small.num_kv_blocks = 7;  // 28 slots < max_model_len 32
  try {
    Server s(tiny(), nullptr, small);
    FAIL() << "a pool below one sequence was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_kv_blocks = 7"), std::string::npos) << e.what();
  }
  ServeOptions too_long = o;
  too_long.max_model_len = 4096;  // past max_position_embeddings 1024
  EXPECT_THROW(Server(tiny(), nullptr, too_long), Error);
  ServeOptions bytes = o;
  bytes.kv_cache_bytes = 10;
  EXPECT_THROW(Server(tiny(), nullptr, bytes), Error);
  // K and V of 10 layers, 2 heads of 64, fp32: 10240 bytes per slot.
  bytes.kv_cache_bytes = 10240 * 4 * 9;
  EXPECT_EQ(Server(tiny(), nullptr, bytes).options().num_kv_blocks, 9);
}

// An end token stops a request (finish "stop", the token kept); ignore_eos generates on.
TEST(Server, EndTokenStopsUnlessIgnored) {
  ServeRequest a = request(1, 200, 12, 10, 0.0);
  const std::vector<int64_t> greedy = generate_alone(a);
  size_t k = 1;
  while (k < greedy.size() && std::find(greedy.begin(), greedy.begin() + k, greedy[k]) != greedy.begin() + k) ++k;
  ASSERT_LT(k, greedy.size()) << "no token of the continuation is new";
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 64;
  o.eos_token_id = greedy[k];
  ServeRequest b = a;
  b.id = 2;
  b.ignore_eos = true;
  Server server(tiny(), nullptr, o);
  const ServeResult res = server.run({a, b});
  EXPECT_EQ(res.requests[0].output_tokens, std::vector<int64_t>(greedy.begin(), greedy.begin() + k + 1));
  EXPECT_EQ(res.requests[0].finish_reason, "stop");
  EXPECT_EQ(res.requests[1].output_tokens, greedy);
  EXPECT_EQ(res.requests[1].finish_reason, "length");
}

// max_concurrency 1: one request in flight at a time, each let in when the previous finished.
TEST(Server, MaxConcurrencyServesOneAtATime) {
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 64;
  o.max_concurrency = 1;
  const std::vector<ServeRequest> rs = {request(1, 0, 9, 4, 0.0), request(2, 30, 7, 3, 0.0), request(3, 60, 5, 3, 0.0)};
  Server server(tiny(), nullptr, o);
  const ServeResult res = server.run(rs);
  check_records(res, rs, server.options());
  for (size_t i = 0; i < rs.size(); ++i) EXPECT_EQ(res.requests[i].output_tokens, generate_alone(rs[i]));
  for (size_t i = 1; i < rs.size(); ++i) {
    EXPECT_GE(res.requests[i].scheduled_s, res.requests[i - 1].finish_s);
    EXPECT_GE(res.requests[i].arrival_s, res.requests[i - 1].finish_s);  // let in then
  }
  for (const StepRecord& s : res.steps) EXPECT_EQ(s.n_seqs, 1);
}

// Lockstep: a hook standing for a second rank that has three more steps of work after this
// one finished; this rank takes them as empty steps, and its tokens are unchanged.
TEST(Server, LockstepTakesEmptySteps) {
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 64;
  int other_steps = -1;  // the other rank's remaining steps once this one has nothing left
  int64_t calls = 0;
  o.lockstep = [&](const LockstepState& mine) {
    ++calls;
    LockstepState job = mine;
    if (!mine.has_unfinished && other_steps < 0) other_steps = 3;
    if (other_steps > 0) {
      job.has_step = true;
      --other_steps;
    }
    job.has_unfinished = mine.has_unfinished || other_steps > 0;
    job.row_offset = 2;  // the other rank's two rows come first
    return job;
  };
  const std::vector<ServeRequest> rs = {request(1, 0, 9, 5, 0.0), request(2, 30, 14, 4, 0.0)};
  Server server(tiny(), nullptr, o);
  const ServeResult res = server.run(rs);
  for (size_t i = 0; i < rs.size(); ++i) EXPECT_EQ(res.requests[i].output_tokens, generate_alone(rs[i]));
  int64_t empty = 0;
  for (const StepRecord& s : res.steps) empty += s.n_seqs == 0 ? 1 : 0;
  EXPECT_EQ(empty, 3);
  EXPECT_EQ(calls, static_cast<int64_t>(res.steps.size()) + 1);  // and the last, which ends the loop
  EXPECT_EQ(res.steps.back().n_seqs, 0);
}

// The three row-execution modes run the same decisions (static:layers=3+4, through chunking and
// pre-emption) to the same tokens; mask computes the skipped rows too, so it executes at least
// what gather does, and gather less than the full model.
TEST(Server, RowExecModesGiveTheSameTokens) {
  ServeOptions o;
  o.block_size = 4;
  o.max_model_len = 64;
  o.max_num_seqs = 4;
  o.max_num_batched_tokens = 16;
  o.num_kv_blocks = 16;
  const std::vector<ServeRequest> rs = workload();
  std::vector<ServeResult> results;
  for (RowExec m : {RowExec::gather, RowExec::bucket, RowExec::mask}) {
    StaticPolicy policy(Descriptor::parse("static:layers=3+4"), tiny().n_layers());
    o.row_exec = m;
    Server server(tiny(), &policy, o);
    results.push_back(server.run(rs));
    EXPECT_EQ(results.back().row_exec, m);
    check_records(results.back(), rs, server.options());
  }
  for (size_t k = 1; k < results.size(); ++k)
    for (size_t i = 0; i < rs.size(); ++i)
      EXPECT_EQ(results[k].requests[i].output_tokens, results[0].requests[i].output_tokens)
          << row_exec_name(results[k].row_exec) << " request " << rs[i].id;
  EXPECT_LT(results[0].flops_executed, results[0].flops_full);
  EXPECT_GE(results[2].flops_executed, results[0].flops_executed);
}
