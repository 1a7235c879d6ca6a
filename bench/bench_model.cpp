// Prefill and decode throughput of the embedded models on this machine (fp32, batch 1):
// prefill of a 128-token prompt into a fresh KV cache, and 64 greedy decode steps after it.
// Warm-up is untimed; tokens/s is Google Benchmark's items_per_second over wall-clock time.
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "model/transformer.h"

namespace {

using semskip::AttnImpl;
using semskip::ForwardOptions;
using semskip::KvCache;
using semskip::ModelOptions;
using semskip::Transformer;

constexpr int64_t kPromptTokens = 128;
constexpr int64_t kDecodeSteps = 64;

const Transformer& model(const std::string& name, AttnImpl impl) {
  static std::map<std::pair<std::string, AttnImpl>, Transformer> cache;
  auto it = cache.find({name, impl});
  if (it == cache.end()) {
    ModelOptions o;
    o.attn_impl = impl;
    it = cache.emplace(std::make_pair(name, impl),
                       Transformer::load(std::string(SEMSKIP_SOURCE_DIR) + "/models/" + name, o)).first;
  }
  return it->second;
}

at::Tensor prompt(const Transformer& m) {
  // A fixed pseudo-random prompt (the same ids as `semskip generate --prompt-tokens 128`).
  return (at::arange(kPromptTokens, at::kLong) * 7919 + 13).remainder(m.config().vocab_size).unsqueeze(0);
}

void bm_prefill(benchmark::State& state, const std::string& name, AttnImpl impl) {
  const Transformer& m = model(name, impl);
  const at::Tensor ids = prompt(m);
  for (int i = 0; i < 2; ++i) {  // warm-up
    KvCache cache = m.make_kv_cache(1, kPromptTokens + kDecodeSteps);
    ForwardOptions fo;
    fo.kv_cache = &cache;
    fo.last_token_logits = true;
    m.forward(ids, fo);
  }
  for (auto _ : state) {
    KvCache cache = m.make_kv_cache(1, kPromptTokens + kDecodeSteps);
    ForwardOptions fo;
    fo.kv_cache = &cache;
    fo.last_token_logits = true;
    const at::Tensor next = m.forward(ids, fo).argmax(-1);
    benchmark::DoNotOptimize(next.data_ptr<int64_t>());
  }
  state.SetItemsProcessed(state.iterations() * kPromptTokens);
  state.counters["threads"] = at::get_num_threads();
}

void bm_decode(benchmark::State& state, const std::string& name, AttnImpl impl) {
  const Transformer& m = model(name, impl);
  const at::Tensor ids = prompt(m);
  for (auto _ : state) {
    state.PauseTiming();
    KvCache cache = m.make_kv_cache(1, kPromptTokens + kDecodeSteps);
    ForwardOptions fo;
    fo.kv_cache = &cache;
    fo.last_token_logits = true;
    at::Tensor next = m.forward(ids, fo).argmax(-1);  // int64 [1, 1]
    state.ResumeTiming();
    for (int64_t s = 0; s < kDecodeSteps; ++s) next = m.forward(next, fo).argmax(-1);
    benchmark::DoNotOptimize(next.data_ptr<int64_t>());
  }
  state.SetItemsProcessed(state.iterations() * kDecodeSteps);
  state.counters["threads"] = at::get_num_threads();
}

}  // namespace

int main(int argc, char** argv) {
  for (const char* name : {"tiny-dense", "tiny-moe"}) {
    for (AttnImpl impl : {AttnImpl::eager, AttnImpl::sdpa}) {
      const std::string suffix = std::string(name) + "/" + semskip::attn_impl_name(impl);
      benchmark::RegisterBenchmark(("prefill_1x128/" + suffix).c_str(), bm_prefill, name, impl)
          ->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
      benchmark::RegisterBenchmark(("decode_64_after_128/" + suffix).c_str(), bm_decode, name, impl)
          ->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
