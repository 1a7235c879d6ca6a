// Composition of the forward: KV-cache decoding against full recomputation, batched (padded)
// generation against one sequence at a time, hooks, and start/stop_at_layer.
#include <gtest/gtest.h>

#include <map>
#include <vector>

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

}  // namespace
}  // namespace semskip::test
