// The fixture models against the outputs Hugging Face transformers produced for them
// (tests/data/parity/*/reference.*): logits, every layer's residual stream, greedy tokens,
// MoE routing, and the FLOP count of torch.utils.flop_counter.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>

#include "metrics/flop_counter.h"
#include "model/generation.h"
#include "model_test_util.h"

namespace semskip::test {
namespace {

constexpr double kTol = 1e-4;

class Parity : public ::testing::TestWithParam<std::tuple<std::string, AttnImpl>> {
 protected:
  std::string name() const { return std::get<0>(GetParam()); }
  AttnImpl impl() const { return std::get<1>(GetParam()); }
};

TEST_P(Parity, LogitsResidualsRoutingAndGreedyMatchReference) {
  const Transformer model = load_fixture(name(), impl());
  const SafetensorsFile ref(fixture_dir(name()) + "/reference.safetensors");
  const int64_t n_layers = model.n_layers();
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE("sequence " + std::to_string(i));
    const at::Tensor ids = ref.tensor(fmt::format("ids_{}", i)).unsqueeze(0);
    HookSet hooks;
    std::map<int64_t, at::Tensor> resid, topk, router;
    for (int64_t l = 0; l < n_layers; ++l) {
      hooks.add(l, HookPoint::resid_post, [&resid](const at::Tensor& x, const HookSite& s) {
        resid[s.layer] = x;
        return std::nullopt;
      });
      hooks.add(l, HookPoint::expert_indices, [&topk](const at::Tensor& x, const HookSite& s) {
        topk[s.layer] = x;
        return std::nullopt;
      });
      hooks.add(l, HookPoint::router_logits, [&router](const at::Tensor& x, const HookSite& s) {
        router[s.layer] = x;
        return std::nullopt;
      });
    }
    ForwardOptions fo;
    fo.hooks = &hooks;
    const at::Tensor logits = model.forward(ids, fo);
    EXPECT_LT(rel_err(logits[0], ref.tensor(fmt::format("logits_{}", i))), kTol);
    ASSERT_EQ(static_cast<int64_t>(resid.size()), n_layers);
    const at::Tensor ref_resid = ref.tensor(fmt::format("resid_post_{}", i));  // [L, T, d]
    for (int64_t l = 0; l < n_layers; ++l) {
      EXPECT_LT(rel_err(resid[l][0], ref_resid[l]), kTol) << "layer " << l;
    }
    const std::string topk_name = fmt::format("topk_experts_{}", i);
    if (ref.has(topk_name)) {
      // The reference holds the MoE layers only, in layer order (qwen2moe-mixed: layers 1, 3).
      const at::Tensor ref_topk = ref.tensor(topk_name);  // int64 [M, T, k]
      const at::Tensor ref_router = ref.tensor(fmt::format("router_logits_{}", i));
      std::vector<int64_t> moe;
      for (int64_t l = 0; l < n_layers; ++l)
        if (model.config().is_moe_layer(l)) moe.push_back(l);
      ASSERT_EQ(static_cast<int64_t>(topk.size()), static_cast<int64_t>(moe.size()));
      ASSERT_EQ(ref_topk.size(0), static_cast<int64_t>(moe.size()));
      for (size_t m = 0; m < moe.size(); ++m) {
        const int64_t l = moe[m];
        // The reference lists the top-k by descending logit; so do we.
        EXPECT_TRUE(at::equal(topk.at(l)[0], ref_topk[static_cast<int64_t>(m)])) << "layer " << l;
        EXPECT_LT(rel_err(router.at(l)[0], ref_router[static_cast<int64_t>(m)]), kTol) << "layer " << l;
      }
    } else {
      EXPECT_TRUE(topk.empty());
    }
    const std::vector<int64_t> greedy = to_vector(ref.tensor(fmt::format("greedy_{}", i)));
    GenerateOptions go;
    go.max_new_tokens = static_cast<int64_t>(greedy.size());
    const GenerateResult gen = generate_greedy(model, {to_vector(ids)}, go);
    EXPECT_EQ(gen.tokens.at(0), greedy);
  }
}

TEST_P(Parity, DenseFlopCountEqualsFlopCounterMode) {
  const Transformer model = load_fixture(name(), impl());
  const SafetensorsFile ref(fixture_dir(name()) + "/reference.safetensors");
  const nlohmann::json meta = fixture_json(name());
  const bool sees_experts = meta.value("flop_counter_sees_routed_experts", true);
  for (int i = 0; i < 2; ++i) {
    FlopCounter flops;
    ForwardOptions fo;
    fo.flops = &flops;
    const at::Tensor ids = ref.tensor(fmt::format("ids_{}", i)).unsqueeze(0);
    model.forward(ids, fo);
    const int64_t expected = meta["sequences"][i]["flop_counter_total"].get<int64_t>();
    int64_t ours = flops.total(AttnConvention::dense);
    if (!sees_experts) {
      // The fixture README's formula for what the reference does not see.
      const ModelConfig& c = model.config();
      int64_t routed = 0;
      for (int64_t l = 0; l < c.n_layers; ++l) {
        if (c.is_moe_layer(l)) routed += ids.size(1) * c.n_experts_per_tok * 6 * c.hidden_size * c.expert_intermediate_size();
      }
      EXPECT_EQ(flops.by_group(OpGroup::experts), routed);
      ours -= routed;
    } else {
      EXPECT_EQ(flops.by_group(OpGroup::experts), 0);
    }
    EXPECT_EQ(ours, expected) << "sequence " << i;
    // Causal attention sees T(T+1)/2 of the T² pairs.
    const int64_t t = ids.size(1);
    EXPECT_EQ(flops.by_group(OpGroup::attn_products, AttnConvention::causal) * 2 * t,
              flops.by_group(OpGroup::attn_products, AttnConvention::dense) * (t + 1));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity,
                         ::testing::Combine(::testing::ValuesIn(fixture_names()),
                                            ::testing::Values(AttnImpl::eager, AttnImpl::sdpa)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + "_" + attn_impl_name(std::get<1>(info.param));
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace semskip::test
