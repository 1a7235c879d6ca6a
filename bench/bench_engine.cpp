// semskip's engine speed on one device, measured with the timing protocol of metrics/timing.h:
//   - the device copy bandwidth (a large device-to-device copy, bytes read + written) and the
//     weight-read floor of batch-1 decode it implies (weight bytes / bandwidth);
//   - prefill of B × T tokens into a fresh KV cache (last-token logits);
//   - greedy decode at each batch size (the decode steps after the prefill, end of sequence
//     ignored); each figure the median of --reps timed runs after --warmup untimed ones;
//   - optionally (CUDA builds) a Kineto trace of one batch-1 generation (--profile-out), which
//     bench/gpu/summarize_trace.py turns into a table of where the time goes.
// Prints one JSON document. Prompts are the ids (i·7919 + 13) mod V, the same as
// `semskip generate --prompt-tokens` and bench/gpu/hf_engine_bench.py use.
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#ifdef SEMSKIP_CUDA
#include <torch/csrc/autograd/profiler_kineto.h>
#endif

#include "core/dtype.h"
#include "core/error.h"
#include "metrics/timing.h"
#include "model/generation.h"
#include "model/transformer.h"

namespace {

using namespace semskip;
using json = nlohmann::json;

struct Options {
  std::string model;
  bool random_init = false;
  std::string dtype = "bf16";
  std::string device = "cuda";
  std::string attn = "sdpa";
  std::vector<int64_t> decode_batches{1, 8, 32, 128};
  int64_t prompt_len = 32;
  int64_t new_tokens = 128;
  int64_t prefill_batch = 8;
  int64_t prefill_len = 512;
  int warmup = 1;
  int reps = 3;
  double copy_gib = 2.0;
  std::string profile_out;  // Kineto trace of one batch-1 generation (CUDA builds)
};

std::vector<int64_t> prompt_ids(int64_t n, int64_t vocab) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = (i * 7919 + 13) % vocab;
  return ids;
}

json stats_json(const TimingStats& t) {
  return {{"median_s", t.median_s}, {"min_s", t.min_s}, {"max_s", t.max_s}, {"samples_s", t.samples_s}};
}

int run(const Options& o) {
  ModelOptions mo;
  mo.dtype = parse_dtype(o.dtype, "--dtype");
  mo.device = at::Device(o.device);
  mo.attn_impl = parse_attn_impl(o.attn, "--attn");
  mo.random_init = o.random_init;
  const Transformer model = Transformer::load(o.model, mo);
  const int64_t vocab = model.config().vocab_size;
  const TimingProtocol protocol{o.warmup, o.reps, model.device()};
  json out;
  out["model"] = o.model;
  out["model_type"] = model.config().model_type;
  out["dtype"] = o.dtype;
  out["device"] = model.device().str();
  out["attn"] = o.attn;
  out["n_params"] = model.n_params();
  out["n_params_active"] = model.n_params_active();
  const int64_t weight_bytes = model.n_params() * static_cast<int64_t>(at::elementSize(model.dtype()));
  out["weight_bytes"] = weight_bytes;
  out["warmup"] = o.warmup;
  out["reps"] = o.reps;

  // Copy bandwidth: bytes read plus bytes written over the median time.
  {
    const int64_t n = static_cast<int64_t>(o.copy_gib * (1 << 30)) / 2;
    const auto opts = at::TensorOptions().dtype(at::kBFloat16).device(model.device());
    at::Tensor src = at::rand({n}, opts), dst = at::empty({n}, opts);
    const TimingStats t = time_repeated([&] { dst.copy_(src); }, {2, 10, model.device()});
    const double bw = t.rate(2.0 * static_cast<double>(n) * 2.0);
    out["copy"] = {{"bytes_moved", 4 * n}, {"bandwidth_Bps", bw}, {"timing", stats_json(t)}};
    out["decode_floor_b1_tokens_per_s"] = bw / static_cast<double>(weight_bytes);
  }

  // Prefill: B × T tokens into a fresh cache.
  {
    const std::vector<int64_t> p = prompt_ids(o.prefill_len, vocab);
    const at::Tensor ids = at::tensor(p, at::kLong).unsqueeze(0).expand({o.prefill_batch, o.prefill_len}).contiguous();
    const at::Tensor ids_dev = ids.to(model.device());
    const TimingStats t = time_repeated(
        [&] {
          KvCache cache = model.make_kv_cache(o.prefill_batch, o.prefill_len);
          ForwardOptions fo;
          fo.kv_cache = &cache;
          fo.last_token_logits = true;
          model.forward(ids_dev, fo);
        },
        protocol);
    out["prefill"] = {{"batch", o.prefill_batch},
                      {"tokens", o.prefill_len},
                      {"tokens_per_s", t.rate(static_cast<double>(o.prefill_batch * o.prefill_len))},
                      {"timing", stats_json(t)}};
  }

  // Decode: the steps after the prefill, per batch size.
  json decode = json::array();
  for (int64_t batch : o.decode_batches) {
    const std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(batch), prompt_ids(o.prompt_len, vocab));
    GenerateOptions go;
    go.max_new_tokens = o.new_tokens;
    for (int i = 0; i < o.warmup; ++i) generate_greedy(model, prompts, go);
    std::vector<double> t_decode, t_total;
    int64_t steps = 0;
    for (int i = 0; i < o.reps; ++i) {
      const GenerateResult r = generate_greedy(model, prompts, go);
      t_decode.push_back(r.t_decode_s);
      t_total.push_back(r.t_prefill_s + r.t_decode_s);
      steps = r.n_decode_steps;
    }
    const TimingStats td = summarize_samples(t_decode), tt = summarize_samples(t_total);
    decode.push_back({{"batch", batch},
                      {"prompt_tokens", o.prompt_len},
                      {"new_tokens", o.new_tokens},
                      {"decode_steps", steps},
                      {"decode_tokens_per_s", td.rate(static_cast<double>(batch * steps))},
                      {"generate_tokens_per_s", tt.rate(static_cast<double>(batch * o.new_tokens))},
                      {"step_ms", td.median_s * 1e3 / static_cast<double>(std::max<int64_t>(steps, 1))},
                      {"decode_timing", stats_json(td)},
                      {"generate_timing", stats_json(tt)}});
    std::fprintf(stderr, "decode b%lld: %.1f tokens/s\n", static_cast<long long>(batch),
                 td.rate(static_cast<double>(batch * steps)));
  }
  out["decode"] = decode;

  if (!o.profile_out.empty()) {
#ifdef SEMSKIP_CUDA
    namespace tap = torch::autograd::profiler;
    namespace tpi = torch::profiler::impl;
    const std::vector<std::vector<int64_t>> prompts(1, prompt_ids(o.prompt_len, vocab));
    GenerateOptions go;
    go.max_new_tokens = std::min<int64_t>(o.new_tokens, 16);
    generate_greedy(model, prompts, go);
    const tpi::ProfilerConfig config(tpi::ProfilerState::KINETO);
    const std::set<tpi::ActivityType> activities{tpi::ActivityType::CPU, tpi::ActivityType::CUDA};
    tap::prepareProfiler(config, activities);
    tap::enableProfiler(config, activities);
    generate_greedy(model, prompts, go);
    synchronize(model.device());
    tap::disableProfiler()->save(o.profile_out);
    out["profile"] = {{"trace", o.profile_out}, {"batch", 1}, {"new_tokens", go.max_new_tokens}};
#else
    SEMSKIP_THROW_MSG("--profile-out needs a CUDA build");
#endif
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"semskip engine benchmark: copy bandwidth, prefill and decode throughput (JSON on stdout)"};
  Options o;
  app.add_option("--model", o.model, "Hugging Face model folder (config.json; weights unless --random-init)")->required();
  app.add_flag("--random-init", o.random_init, "Random weights from config.json alone");
  app.add_option("--dtype", o.dtype, "fp32, bf16 or fp16")->capture_default_str();
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--attn", o.attn, "eager or sdpa")->capture_default_str();
  app.add_option("--decode-batch", o.decode_batches, "Decode batch sizes")->delimiter(',')->capture_default_str();
  app.add_option("--prompt-len", o.prompt_len, "Prompt tokens before decoding")->capture_default_str();
  app.add_option("--new-tokens", o.new_tokens, "Tokens generated per sequence")->capture_default_str();
  app.add_option("--prefill-batch", o.prefill_batch, "Prefill batch")->capture_default_str();
  app.add_option("--prefill-len", o.prefill_len, "Prefill tokens per sequence")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed runs before each measurement")->capture_default_str();
  app.add_option("--reps", o.reps, "Timed runs of each measurement (the median is reported)")->capture_default_str();
  app.add_option("--copy-gib", o.copy_gib, "Size of the bandwidth copy, GiB")->capture_default_str();
  app.add_option("--profile-out", o.profile_out, "Write a Kineto trace of one batch-1 generation (CUDA builds)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_engine: error: %s\n", e.what());
    return 1;
  }
}
