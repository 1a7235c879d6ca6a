// Composition of the forward: KV-cache decoding against full recomputation, batched (padded)
// generation against one sequence at a time, hooks, and start/stop_at_layer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>

#include "model/generation.h"
#include "model_test_util.h"

namespace semskip::test {
namespace {

at::Tensor fixture_ids(const std::string& name, int i) {
  const SafetensorsFile ref(fixture_dir(name) + "/reference.safetensors");
  return ref.tensor(fmt::format("ids_{}", i)).clone().unsqueeze(0);  // int64 [1, T]
}

class PerFixture : public ::testing::TestWithParam<std::string> {};

// Prefill of a prefix, then a chunk of several tokens, then one token at a time: every step's
// logits equal those of the full causal forward at the same positions.
TEST_P(PerFixture, KvCacheDecodeEqualsFullRecompute) {
  for (AttnImpl impl : {AttnImpl::eager, AttnImpl::sdpa}) {
    const Transformer model = load_fixture(GetParam(), impl);
    const at::Tensor ids = fixture_ids(GetParam(), 1);  // [1, 29]
    const int64_t n = ids.size(1);
    const at::Tensor full = model.forward(ids);         // [1, 29, V]
    KvCache cache = model.make_kv_cache(1, 8);          // small: exercises growth
    ForwardOptions fo;
    fo.kv_cache = &cache;
    std::vector<at::Tensor> steps;
    steps.push_back(model.forward(ids.narrow(1, 0, 10), fo));
    steps.push_back(model.forward(ids.narrow(1, 10, 6), fo));
    for (int64_t t = 16; t < n; ++t) steps.push_back(model.forward(ids.narrow(1, t, 1), fo));
    const at::Tensor incremental = at::cat(steps, 1);
    EXPECT_EQ(cache.length(0), n);
    EXPECT_LT(rel_err(incremental, full), 1e-5) << attn_impl_name(impl);
  }
}

// Two prompts of different lengths in one left-padded batch give, at every valid position,
// the logits each gives alone; and batched greedy generation the same tokens.
TEST_P(PerFixture, BatchedGenerationEqualsOneByOne) {
  const Transformer model = load_fixture(GetParam(), AttnImpl::sdpa);
  const std::vector<int64_t> a = to_vector(fixture_ids(GetParam(), 0));  // 13 tokens
  const std::vector<int64_t> b = to_vector(fixture_ids(GetParam(), 1));  // 29 tokens
  const std::vector<int64_t> c(b.begin(), b.begin() + 5);
  const std::vector<std::vector<int64_t>> prompts = {a, b, c};

  GenerateOptions go;
  go.max_new_tokens = 12;
  const GenerateResult batched = generate_greedy(model, prompts, go);
  ASSERT_EQ(batched.tokens.size(), 3u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const GenerateResult alone = generate_greedy(model, {prompts[i]}, go);
    EXPECT_EQ(batched.tokens[i], alone.tokens[0]) << "prompt " << i;
    EXPECT_EQ(batched.tokens[i].size(), 12u);
  }
  EXPECT_EQ(batched.n_tokens_prompt, 13 + 29 + 5);

  // The padded forward itself: prompt a left-padded to 29 slots.
  at::Tensor ids = at::zeros({2, 29}, at::kLong);
  at::Tensor valid = at::zeros({2, 29}, at::kBool);
  ids[0].narrow(0, 16, 13).copy_(at::tensor(a, at::kLong));
  valid[0].narrow(0, 16, 13).fill_(true);
  ids[1].copy_(at::tensor(b, at::kLong));
  valid[1].fill_(true);
  for (AttnImpl impl : {AttnImpl::eager, AttnImpl::sdpa}) {
    const Transformer m = load_fixture(GetParam(), impl);
    ForwardOptions fo;
    fo.attention_mask = valid;
    const at::Tensor logits = m.forward(ids, fo);
    EXPECT_LT(rel_err(logits[0].narrow(0, 16, 13), m.forward(at::tensor(a, at::kLong).unsqueeze(0))[0]), 1e-5);
    EXPECT_LT(rel_err(logits[1], m.forward(at::tensor(b, at::kLong).unsqueeze(0))[0]), 1e-5);
    EXPECT_FALSE(logits.isnan().any().item<bool>());
  }
}

TEST_P(PerFixture, HookReplacingResidPostWithItselfChangesNothing) {
  const Transformer model = load_fixture(GetParam());
  const at::Tensor ids = fixture_ids(GetParam(), 0);
  const at::Tensor plain = model.forward(ids);
  for (int64_t l = 0; l < model.n_layers(); ++l) {
    HookSet hooks;
    int calls = 0;
    hooks.add(hook_name(l, HookPoint::resid_post), [&calls](const at::Tensor& x, const HookSite&) {
      ++calls;
      return std::optional<at::Tensor>(x.clone());
    });
    ForwardOptions fo;
    fo.hooks = &hooks;
    EXPECT_TRUE(at::equal(model.forward(ids, fo), plain)) << "layer " << l;
    EXPECT_EQ(calls, 1);
  }
}

// The residual recorded on input b, substituted at layer l while running input a, makes every
// later layer and the logits those of b; the layers up to l stay those of a.
TEST_P(PerFixture, HookReplacingResidPostWithRecordedReproducesLaterLayers) {
  const Transformer model = load_fixture(GetParam());
  const at::Tensor a = fixture_ids(GetParam(), 0);
  const at::Tensor b = fixture_ids(GetParam(), 1).narrow(1, 0, a.size(1));
  const int64_t n = model.n_layers();
  const auto record_all = [&](const at::Tensor& ids, const HookSet* extra, std::vector<at::Tensor>& resid) {
    HookSet hooks = extra ? *extra : HookSet();
    resid.assign(static_cast<size_t>(n), at::Tensor());
    for (int64_t l = 0; l < n; ++l) {
      hooks.add(l, HookPoint::resid_post, [&resid](const at::Tensor& x, const HookSite& s) {
        resid[static_cast<size_t>(s.layer)] = x;
        return std::nullopt;
      });
    }
    ForwardOptions fo;
    fo.hooks = &hooks;
    return model.forward(ids, fo);
  };
  std::vector<at::Tensor> resid_a, resid_b;
  const at::Tensor logits_b = record_all(b, nullptr, resid_b);
  record_all(a, nullptr, resid_a);
  const int64_t l = n / 2;
  HookSet patch;
  patch.add(l, HookPoint::resid_post, [&](const at::Tensor&, const HookSite&) {
    return std::optional<at::Tensor>(resid_b[static_cast<size_t>(l)]);
  });
  std::vector<at::Tensor> resid_patched;
  const at::Tensor logits = record_all(a, &patch, resid_patched);
  EXPECT_TRUE(at::allclose(logits, logits_b, 1e-6, 1e-6));
  EXPECT_FALSE(at::allclose(logits_b, model.forward(a), 1e-3, 1e-3));
  for (int64_t k = 0; k < l; ++k) EXPECT_TRUE(at::equal(resid_patched[k], resid_a[k])) << "layer " << k;
  for (int64_t k = l + 1; k < n; ++k) EXPECT_TRUE(at::allclose(resid_patched[k], resid_b[k], 1e-6, 1e-6)) << k;
}

TEST_P(PerFixture, StartAndStopAtLayerComposeToTheFullForward) {
  const Transformer model = load_fixture(GetParam());
  const at::Tensor ids = fixture_ids(GetParam(), 1);
  const at::Tensor full = model.forward(ids);
  const int64_t n = model.n_layers();
  for (int64_t split = 0; split <= n; ++split) {
    ForwardOptions head;
    head.stop_at_layer = split;
    const at::Tensor resid = model.forward(ids, head);
    ForwardOptions tail;
    tail.start_at_layer = split;
    EXPECT_TRUE(at::allclose(model.forward(resid, tail), full, 1e-6, 1e-6)) << "split " << split;
  }
  // Three pieces, the middle one from residual to residual, and a negative stop.
  ForwardOptions p1, p2, p3;
  p1.stop_at_layer = 1;
  p2.start_at_layer = 1;
  p2.stop_at_layer = -1;
  p3.start_at_layer = n - 1;
  const at::Tensor r1 = model.forward(ids, p1);
  const at::Tensor r2 = model.forward(r1, p2);
  EXPECT_TRUE(at::allclose(model.forward(r2, p3), full, 1e-6, 1e-6));
  // stop_at_layer = n returns the last residual, before the final norm.
  ForwardOptions all;
  all.stop_at_layer = n;
  EXPECT_TRUE(at::allclose(model.lm_head(model.final_norm(model.forward(ids, all))), full, 1e-6, 1e-6));

  // Split forwards share one KV cache: each layer range appends to its own layers once.
  KvCache cache = model.make_kv_cache(1, 64);
  ForwardOptions c1, c2;
  c1.kv_cache = c2.kv_cache = &cache;
  c1.stop_at_layer = 2;
  c2.start_at_layer = 2;
  const int64_t t0 = 20;
  model.forward(model.forward(ids.narrow(1, 0, t0), c1), c2);
  std::vector<at::Tensor> steps;
  for (int64_t t = t0; t < ids.size(1); ++t) {
    steps.push_back(model.forward(model.forward(ids.narrow(1, t, 1), c1), c2));
  }
  EXPECT_LT(rel_err(at::cat(steps, 1), full.narrow(1, t0, ids.size(1) - t0)), 1e-5);
}

TEST_P(PerFixture, BadForwardInputsAreRefused) {
  const Transformer model = load_fixture(GetParam());
  const at::Tensor ids = fixture_ids(GetParam(), 0);
  ForwardOptions o;
  o.start_at_layer = 1;
  EXPECT_THROW(model.forward(ids, o), Error);  // ids where a residual is expected
  EXPECT_THROW(model.forward(ids.to(at::kFloat)), Error);
  ForwardOptions bad_stop;
  bad_stop.stop_at_layer = model.n_layers() + 1;
  EXPECT_THROW(model.forward(ids, bad_stop), Error);
  ForwardOptions bad_range;
  bad_range.start_at_layer = 2;
  bad_range.stop_at_layer = 1;
  EXPECT_THROW(model.forward(at::zeros({1, 3, model.config().hidden_size}), bad_range), Error);
}

// A decode of the whole context (max_position_embeddings positions) one token at a time, from a
// cache of 3 slots that doubles seven times on the way: every step's logits equal those of one
// full forward, and those of a cache big enough from the start.
TEST_P(PerFixture, LongDecodePastTheCacheCapacityEqualsOneForward) {
  const Transformer model = load_fixture(GetParam());
  const int64_t n = model.config().max_position_embeddings;  // 256 on every fixture
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor ids = at::randint(model.config().vocab_size, {2, n}, g, at::kLong);
  const at::Tensor full = model.forward(ids);  // [2, n, V]
  const auto decode = [&](KvCache& cache) {
    ForwardOptions fo;
    fo.kv_cache = &cache;
    std::vector<at::Tensor> steps{model.forward(ids.narrow(1, 0, 5), fo)};
    for (int64_t t = 5; t < n; ++t) steps.push_back(model.forward(ids.narrow(1, t, 1), fo));
    return at::cat(steps, 1);
  };
  KvCache small = model.make_kv_cache(2, 3);
  KvCache big = model.make_kv_cache(2, n);
  const at::Tensor grown = decode(small);
  const at::Tensor preallocated = decode(big);
  EXPECT_EQ(small.capacity(), 384);  // 3 · 2⁷
  EXPECT_EQ(big.capacity(), n);      // never grew
  for (int64_t l = 0; l < model.n_layers(); ++l) EXPECT_EQ(small.length(l), n) << "layer " << l;
  EXPECT_LT(rel_err(grown, full), 1e-5);
  EXPECT_LT(rel_err(preallocated, full), 1e-5);
  // Growing moves the stored keys and values, it does not change them.
  EXPECT_TRUE(at::allclose(grown, preallocated, 1e-6, 1e-6)) << (grown - preallocated).abs().max();
}

void expect_refused(const std::function<void()>& f, const std::string& position, const std::string& limit) {
  try {
    f();
    ADD_FAILURE() << "accepted a position past the limit (" << limit << ")";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("position " + position), std::string::npos) << what;
    EXPECT_NE(what.find(limit), std::string::npos) << what;
  }
}

// RoPE computes any position, so positions past max_position_embeddings used to run silently
// on angles the model never saw. Transformer refuses them, whichever way the positions arise
// (a long input, a cache that continues past the limit, explicit positions), before any layer
// writes to the cache; left padding counts positions, not slots.
TEST_P(PerFixture, PositionsPastMaxPositionEmbeddingsAreRefused) {
  const Transformer model = load_fixture(GetParam());
  const int64_t limit = model.config().max_position_embeddings;
  const std::string limit_text = fmt::format("max_position_embeddings = {}", limit);
  const std::string last = std::to_string(limit);
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(6);
  const at::Tensor ids = at::randint(model.config().vocab_size, {1, limit + 2}, g, at::kLong);

  expect_refused([&] { model.forward(ids.narrow(1, 0, limit + 1)); }, last, limit_text);
  KvCache cache = model.make_kv_cache(1, 16);
  ForwardOptions fo;
  fo.kv_cache = &cache;
  const at::Tensor whole = model.forward(ids.narrow(1, 0, limit), fo);  // positions 0..limit−1: the whole context
  expect_refused([&] { model.forward(ids.narrow(1, limit, 1), fo); }, last, limit_text);
  for (int64_t l = 0; l < model.n_layers(); ++l) EXPECT_EQ(cache.length(l), limit) << "layer " << l;
  // start_at_layer continues the same cache: refused alike.
  ForwardOptions tail = fo;
  tail.start_at_layer = 1;
  expect_refused([&] { model.forward(at::zeros({1, 1, model.config().hidden_size}), tail); }, last, limit_text);

  ForwardOptions explicit_pos;
  explicit_pos.positions = at::tensor({int64_t(3), int64_t(4), limit + 1}).view({1, 3});
  expect_refused([&] { model.forward(ids.narrow(1, 0, 3), explicit_pos); }, std::to_string(limit + 1), limit_text);
  explicit_pos.positions = at::arange(limit - 3, limit, at::kLong).view({1, 3});
  EXPECT_NO_THROW(model.forward(ids.narrow(1, 0, 3), explicit_pos));

  // limit + 2 slots, but each row has 2 slots of left padding: its positions end at limit − 1.
  at::Tensor padded = at::zeros({2, limit + 2}, at::kLong);
  padded[0].narrow(0, 2, limit).copy_(ids[0].narrow(0, 0, limit));
  padded[1].narrow(0, 2, limit).copy_(ids[0].narrow(0, 2, limit));
  at::Tensor valid = at::ones({2, limit + 2}, at::kBool);
  valid.narrow(1, 0, 2).fill_(false);
  ForwardOptions pad;
  pad.attention_mask = valid;
  const at::Tensor logits = model.forward(padded, pad);
  EXPECT_LT(rel_err(logits[0].narrow(0, 2, limit), whole[0]), 1e-5);
  valid[1][2] = false;  // row 1: 3 slots of padding; row 0 still reaches limit − 1
  pad.attention_mask = valid;
  EXPECT_NO_THROW(model.forward(padded, pad));
  valid[0][1] = true;  // row 0: one slot of padding less, so its last position is limit
  pad.attention_mask = valid;
  expect_refused([&] { model.forward(padded, pad); }, last, limit_text);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PerFixture, ::testing::ValuesIn(fixture_names()), [](const auto& info) {
  std::string n = info.param;
  for (char& ch : n) if (ch == '-') ch = '_';
  return n;
});

TEST(Hooks, ExpertIndicesAreReadOnlyAndReplacementsMustMatch) {
  const Transformer model = load_fixture("qwen2moe");
  const at::Tensor ids = fixture_ids("qwen2moe", 0);
  HookSet seen;
  at::Tensor indices;
  seen.add("blocks.1.mlp.hook_expert_indices", [&](const at::Tensor& x, const HookSite&) {
    indices = x;
    return std::nullopt;
  });
  ForwardOptions fo;
  fo.hooks = &seen;
  model.forward(ids, fo);
  ASSERT_TRUE(indices.defined());
  EXPECT_EQ(indices.sizes(), (at::IntArrayRef{1, ids.size(1), 2}));
  EXPECT_EQ(indices.scalar_type(), at::kLong);

  HookSet writes;
  writes.add("blocks.1.mlp.hook_expert_indices",
             [](const at::Tensor& x, const HookSite&) { return std::optional<at::Tensor>(x.clone()); });
  fo.hooks = &writes;
  EXPECT_THROW(model.forward(ids, fo), Error);

  HookSet wrong_shape;
  wrong_shape.add("blocks.0.hook_mlp_out",
                  [](const at::Tensor& x, const HookSite&) { return std::optional<at::Tensor>(x.narrow(1, 0, 1)); });
  fo.hooks = &wrong_shape;
  EXPECT_THROW(model.forward(ids, fo), Error);

  // Zeroing every MLP output is the model without MLPs: the residual after block 0 is
  // embedding + attention output alone.
  HookSet zero;
  at::Tensor attn_out, resid_pre, resid_post;
  zero.add("blocks.0.hook_mlp_out", [](const at::Tensor& x, const HookSite&) { return std::optional<at::Tensor>(at::zeros_like(x)); });
  zero.add("blocks.0.hook_attn_out", [&](const at::Tensor& x, const HookSite&) { attn_out = x; return std::nullopt; });
  zero.add("blocks.0.hook_resid_pre", [&](const at::Tensor& x, const HookSite&) { resid_pre = x; return std::nullopt; });
  zero.add("blocks.0.hook_resid_post", [&](const at::Tensor& x, const HookSite&) { resid_post = x; return std::nullopt; });
  fo.hooks = &zero;
  model.forward(ids, fo);
  EXPECT_TRUE(at::equal(resid_post, resid_pre + attn_out));
  EXPECT_TRUE(at::equal(resid_pre, model.embed(ids)));
}

TEST(Hooks, NamesParseAsTransformerLensWritesThem) {
  EXPECT_EQ(HookSet::parse("blocks.3.hook_resid_post").layer, 3);
  EXPECT_EQ(HookSet::parse("blocks.3.hook_resid_post").point, HookPoint::resid_post);
  EXPECT_EQ(HookSet::parse("blocks.12.mlp.hook_expert_indices").point, HookPoint::expert_indices);
  EXPECT_EQ(hook_name(7, HookPoint::attn_out), "blocks.7.hook_attn_out");
  for (const char* bad : {"blocks.x.hook_resid_post", "blocks.1.hook_nope", "hook_resid_post", "blocks.-1.hook_mlp_out",
                          "blocks.1"}) {
    EXPECT_THROW(HookSet::parse(bad), Error) << bad;
  }
  HookSet h;
  EXPECT_TRUE(h.empty());
  h.add("blocks.2.hook_attn_out", [](const at::Tensor&, const HookSite&) { return std::nullopt; });
  EXPECT_FALSE(h.empty());
  EXPECT_TRUE(h.has(2, HookPoint::attn_out));
  EXPECT_FALSE(h.has(2, HookPoint::mlp_out));
  EXPECT_FALSE(h.has(40, HookPoint::attn_out));
}

TEST(Generation, StopsAtEosAndRefusesEmptyPrompts) {
  const Transformer model = load_fixture("llama-gqa");
  const std::vector<int64_t> prompt = to_vector(fixture_ids("llama-gqa", 1));
  GenerateOptions go;
  go.max_new_tokens = 16;
  const std::vector<int64_t> free_run = generate_greedy(model, {prompt}, go).tokens[0];
  // Declaring the 3rd generated token the end of sequence stops right after it.
  go.eos_token_id = free_run[2];
  const std::vector<int64_t> stopped = generate_greedy(model, {prompt}, go).tokens[0];
  const auto first = std::find(free_run.begin(), free_run.end(), free_run[2]);
  EXPECT_EQ(stopped, std::vector<int64_t>(free_run.begin(), first + 1));
  EXPECT_THROW(generate_greedy(model, {}, go), Error);
  EXPECT_THROW(generate_greedy(model, {{}}, go), Error);
}

// ModelOptions::max_model_len moves the limit: above the config's it warns once at build time
// and then runs those positions; below, it refuses at its own value and names it.
TEST(ContextLimit, MaxModelLenRaisesOrLowersTheLimit) {
  const std::string dir = fixture_dir("llama-gqa");
  const Transformer plain = load_fixture("llama-gqa");
  const int64_t limit = plain.config().max_position_embeddings;
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(7);
  const at::Tensor ids = at::randint(plain.config().vocab_size, {1, limit + 40}, g, at::kLong);
  ModelOptions o;
  o.attn_impl = AttnImpl::eager;
  o.max_model_len = 2 * limit;
  ::testing::internal::CaptureStderr();
  const Transformer raised = Transformer::load(dir, o);
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find(fmt::format("warning: {}/config.json: max_model_len {} exceeds max_position_embeddings {}",
                                     dir, 2 * limit, limit)),
            std::string::npos)
      << warning;
  const at::Tensor long_logits = raised.forward(ids);  // positions 0..limit+39
  EXPECT_TRUE(long_logits.isfinite().all().item<bool>());
  // Causal: the first `limit` positions are those of the plain model on the prefix.
  EXPECT_LT(rel_err(long_logits.narrow(1, 0, limit), plain.forward(ids.narrow(1, 0, limit))), 1e-5);
  expect_refused([&] { raised.forward(at::zeros({1, 2 * limit + 1}, at::kLong)); }, std::to_string(2 * limit),
                 fmt::format("ModelOptions::max_model_len = {}", 2 * limit));

  o.max_model_len = 16;
  ::testing::internal::CaptureStderr();
  const Transformer lowered = Transformer::load(dir, o);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_NO_THROW(lowered.forward(ids.narrow(1, 0, 16)));
  expect_refused([&] { lowered.forward(ids.narrow(1, 0, 17)); }, "16", "ModelOptions::max_model_len = 16");

  o.max_model_len = -1;
  EXPECT_THROW(Transformer::load(dir, o), Error);
}

// MoE routing in bf16 against Hugging Face's fp32 routing (reference.safetensors: router
// logits and top-k experts of every layer). Isolated from the rest of the bf16 forward: the
// fp32 model's MoE input is rounded to bf16 and routed by the bf16 router. A token's ordered
// top-k may differ only where the reference's logits are within what bf16 rounding can move
// them: the rounded product x·W changes logit e by at most b_e = ε·Σᵢ|xᵢ||W_ei| + ε/2·|l_e|
// (ε = 2⁻⁷, bf16's machine epsilon; first order), so two neighbours in the sorted logits can
// swap only if their gap is ≤ b_a + b_b. Every other token must route exactly as the reference.
// (ε·|logit| alone is too tight: a logit is a sum with cancellation. On mixtral one token's
// experts 1 and 2 are 0.0045 apart, above ε·|logit| = 0.0039 but within b = 0.059, and bf16
// swaps their order; of 126 decisions per fixture 24 (qwen2moe) and 21 (mixtral) are within b,
// and 0 and 1 differ.)
// Then the whole model in bf16: its routing is the top-k of its own router logits (at::topk on
// their fp32 softmax, as Hugging Face computes it) and differs from the reference only at
// tokens whose gap is within the bf16 logits' actual deviation from the reference.
class MoeFixture : public ::testing::TestWithParam<std::string> {};

std::string ids_text(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

TEST_P(MoeFixture, Bf16RoutingEqualsFp32WhereTheLogitsAreNotWithinRounding) {
  const std::string name = GetParam();
  const Transformer m32 = load_fixture(name);
  const Transformer m16 = load_fixture(name, AttnImpl::eager, DType::bf16);
  const SafetensorsFile ref(fixture_dir(name) + "/reference.safetensors");
  const double eps = std::ldexp(1.0, -7);
  int64_t n_decisions = 0, n_close = 0, n_mismatch_isolated = 0, n_mismatch_full = 0, n_close_full = 0;
  int64_t n_eps_close = 0, n_mismatch_past_eps = 0;
  for (int i = 0; i < 2; ++i) {
    const at::Tensor ids = ref.tensor(fmt::format("ids_{}", i)).clone().unsqueeze(0);
    const at::Tensor ref_logits = ref.tensor(fmt::format("router_logits_{}", i)).to(at::kDouble);  // [L, T, E]
    const at::Tensor ref_topk = ref.tensor(fmt::format("topk_experts_{}", i));                   // [L, T, k]
    const int64_t n_layers = m32.n_layers(), n_tok = ids.size(1);
    std::vector<at::Tensor> mid(static_cast<size_t>(n_layers)), logits16(static_cast<size_t>(n_layers)),
        topk16(static_cast<size_t>(n_layers)), weights16(static_cast<size_t>(n_layers));
    HookSet h32, h16;
    for (int64_t l = 0; l < n_layers; ++l) {
      const size_t li = static_cast<size_t>(l);
      h32.add(l, HookPoint::resid_mid, [&mid, li](const at::Tensor& x, const HookSite&) {
        mid[li] = x;
        return std::nullopt;
      });
      h16.add(l, HookPoint::router_logits, [&logits16, li](const at::Tensor& x, const HookSite&) {
        logits16[li] = x;
        return std::nullopt;
      });
      h16.add(l, HookPoint::expert_indices, [&topk16, li](const at::Tensor& x, const HookSite&) {
        topk16[li] = x;
        return std::nullopt;
      });
      h16.add(l, HookPoint::expert_weights, [&weights16, li](const at::Tensor& x, const HookSite&) {
        weights16[li] = x;
        return std::nullopt;
      });
    }
    ForwardOptions f32, f16;
    f32.hooks = &h32;
    f16.hooks = &h16;
    m32.forward(ids, f32);
    m16.forward(ids, f16);
    for (int64_t l = 0; l < n_layers; ++l) {
      const size_t li = static_cast<size_t>(l);
      const MoeBlock& moe16 = *m16.layer(l).moe;
      const int64_t k = moe16.top_k;
      const at::Tensor x = m32.layer(l).post_attention_norm.forward(mid[li])[0];  // fp32 [T, d]
      const at::Tensor xb = x.to(at::kBFloat16);
      const Routing r = moe16.route(xb);
      // The bound of each logit's rounding error, from the rounded operands.
      const at::Tensor w = moe16.router.weight.to(at::kDouble);                       // [E, d]
      const at::Tensor bound = eps * at::matmul(xb.to(at::kDouble).abs(), w.abs().t()) +
                               eps / 2 * ref_logits[l].abs();                       // [T, E]
      // The bf16 model's deviation from the reference logits, per token.
      const at::Tensor dev = (logits16[li][0].to(at::kDouble) - ref_logits[l]).abs().amax(1);  // [T]
      // Whole-model routing = at::topk of its own logits' fp32 softmax.
      const auto [w_full, ids_full] = at::topk(at::softmax(logits16[li][0], -1, at::kFloat), k, -1);
      EXPECT_TRUE(at::equal(topk16[li][0], ids_full)) << name << " seq " << i << " layer " << l;
      const at::Tensor w_want = moe16.norm_topk_prob ? w_full / w_full.sum(-1, true) : w_full;
      EXPECT_TRUE(at::allclose(weights16[li][0].to(at::kFloat), w_want, 1e-2, 1e-3));
      for (int64_t t = 0; t < n_tok; ++t) {
        const auto [sorted, order] = at::sort(ref_logits[l][t], 0, /*descending=*/true);
        bool close = false, close_full = false, close_eps = false;
        for (int64_t j = 0; j < k; ++j) {
          const int64_t a = order[j].item<int64_t>(), b = order[j + 1].item<int64_t>();
          const double gap = (sorted[j] - sorted[j + 1]).item<double>();
          close = close || gap <= (bound[t][a] + bound[t][b]).item<double>();
          close_eps = close_eps || gap <= eps * std::max(std::abs(sorted[j].item<double>()),
                                                         std::abs(sorted[j + 1].item<double>()));
          close_full = close_full || gap <= 2 * dev[t].item<double>();
        }
        const std::vector<int64_t> want = to_vector(ref_topk[l][t]);
        const bool same_isolated = to_vector(r.topk_ids[t]) == want;
        const bool same_full = to_vector(topk16[li][0][t]) == want;
        ++n_decisions;
        n_close += close;
        n_close_full += close_full;
        n_mismatch_isolated += !same_isolated;
        n_mismatch_full += !same_full;
        n_eps_close += close_eps;
        n_mismatch_past_eps += !close_eps && !same_isolated;
        if (!same_isolated) {
          int64_t j = 0;  // the closest neighbours among the first k + 1
          for (int64_t q = 1; q < k; ++q)
            if ((sorted[q] - sorted[q + 1]).item<double>() < (sorted[j] - sorted[j + 1]).item<double>()) j = q;
          const int64_t a = order[j].item<int64_t>(), b = order[j + 1].item<int64_t>();
          std::printf("%s seq %d layer %lld token %lld: bf16 routes %s, the reference %s; experts %lld and %lld: gap "
                      "%.3g, eps·|logit| %.3g, rounding bound %.3g\n",
                      name.c_str(), i, (long long)l, (long long)t, ids_text(to_vector(r.topk_ids[t])).c_str(),
                      ids_text(want).c_str(), (long long)a, (long long)b, (sorted[j] - sorted[j + 1]).item<double>(),
                      eps * std::abs(sorted[j].item<double>()), (bound[t][a] + bound[t][b]).item<double>());
        }
        if (!close) {
          EXPECT_TRUE(same_isolated) << name << " seq " << i << " layer " << l << " token " << t << ": got "
                                     << r.topk_ids[t] << " want " << ref_topk[l][t];
        }
        if (!close_full) {
          EXPECT_TRUE(same_full) << name << " seq " << i << " layer " << l << " token " << t
                                 << " (whole bf16 model): got " << topk16[li][0][t] << " want " << ref_topk[l][t];
        }
      }
    }
  }
  std::printf("%s: %lld routing decisions; isolated bf16 router: %lld within the rounding bound of a tie "
              "(%lld within eps·|logit|), %lld differ (%lld with a gap > eps·|logit|); whole bf16 model: %lld "
              "within its deviation, %lld differ\n",
              name.c_str(), (long long)n_decisions, (long long)n_close, (long long)n_eps_close,
              (long long)n_mismatch_isolated, (long long)n_mismatch_past_eps, (long long)n_close_full,
              (long long)n_mismatch_full);
  // Most decisions are clear of rounding, so the comparison tests something.
  EXPECT_LT(n_close, n_decisions / 2);
}

INSTANTIATE_TEST_SUITE_P(Moe, MoeFixture, ::testing::Values("qwen2moe", "mixtral"));

}  // namespace
}  // namespace semskip::test
