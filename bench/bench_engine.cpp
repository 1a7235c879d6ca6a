// semskip's engine speed on one device, measured with the timing protocol of metrics/timing.h:
//   - the device copy bandwidth (a large device-to-device copy, bytes read + written) and the
//     weight-read floor of batch-1 decode it implies (weight bytes / bandwidth);
//   - prefill of B × T tokens into a fresh KV cache (last-token logits);
//   - greedy decode at each batch size and --decode-mode (eager: a forward per step; graph: the
//     fixed-shape step replayed from a CUDA graph, its capture timed with the steps; fixed: that
//     step run eagerly; model/fixed_decode.h), the decode steps after the prefill, end of
//     sequence ignored; each figure the median of --reps timed runs after --warmup untimed ones,
//     and each mode's tokens compared with the first mode's;
//   - with --skip (repeatable, a policy descriptor such as static:k=6 or random:rate=0.25): the
//     skipping run (SkipEngine over the model's one forward) against the full model through
//     the same engine (policy none), for a --skip-prefill B × T prefill and --skip-decode-batch
//     decode steps: wall-clock saving next to executed-FLOPs saving and their ratio, for each
//     --skip-exec row execution (repeatable: gather, bucket, mask; model/layer_plan.h), side
//     by side against the full model (each row's runs alternate with the full model's, so that
//     the machine's drift reaches both sides of the ratio), the decode in each --skip-decode-mode (eager;
//     fixed and graph, the fixed-shape step without the skipped layers, for whole-layer
//     policies); static:k picks its k layers by block influence on the bench's own prefill
//     (calibration); --skip-profile-out traces one skipping prefill;
//   - optionally (CUDA builds) a Kineto trace of one batch-1 generation per decode mode (--profile-out), which
//     bench/gpu/summarize_trace.py turns into a table of where the time goes.
// Prints one JSON document. Prompts are the ids (i·7919 + 13) mod V, the same as
// `semskip generate --prompt-tokens` and bench/gpu/hf_engine_bench.py use.
#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
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
#include "engine/run_config.h"
#include "engine/skip_engine.h"
#include "metrics/flop_counter.h"
#include "metrics/timing.h"
#include "model/fixed_decode.h"
#include "model/generation.h"
#include "model/transformer.h"
#include "skip/skip_policy.h"

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
  std::vector<std::string> decode_modes{"eager", "graph"};  // model/generation.h DecodeMode
  int64_t prompt_len = 32;
  int64_t new_tokens = 128;
  int64_t prefill_batch = 8;
  int64_t prefill_len = 512;
  int warmup = 1;
  int reps = 3;
  double copy_gib = 2.0;
  std::string profile_out;  // Kineto trace of one batch-1 generation (CUDA builds)
  std::vector<std::string> skip;     // policy descriptors measured against none
  std::vector<std::string> skip_exec = {"gather"};  // row executions of the skipping runs
  std::vector<std::string> skip_decode_modes = {"eager"};  // decode modes of the skipping runs
  std::string skip_profile_out;  // Kineto trace of one skipping prefill (CUDA builds)
  int64_t skip_decode_batch = 32;
  int64_t skip_decode_steps = 32;
  int64_t skip_prefill_batch = 8;
  int64_t skip_prefill_len = 512;
};

std::vector<int64_t> prompt_ids(int64_t n, int64_t vocab) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = (i * 7919 + 13) % vocab;
  return ids;
}

json stats_json(const TimingStats& t) {
  return {{"median_s", t.median_s}, {"min_s", t.min_s}, {"max_s", t.max_s}, {"samples_s", t.samples_s}};
}

// One skipping measurement: a phase (prefill or decode) of one policy, one timed run of it
// (seconds, the device synchronised around it) and its FLOPs.
struct SkipPhase {
  std::function<double()> timed;
  int64_t flops = 0;  // executed, overheads included (one untimed run)
};

StepContext step_ctx(const Transformer& m, const at::Tensor& valid, bool prefill) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < valid.size(0); ++b) rows.push_back(b);
  return StepContext(m.config().n_layers, m.config().hidden_size, valid, rows, prefill);
}

// Prefill of ids [B, T] into a fresh cache under `policy` (held by reference: it must outlive
// the phase).
SkipPhase skip_prefill(const Transformer& m, const SkipEngine& engine, SkipPolicy& policy, const at::Tensor& ids) {
  const auto once = [&m, &engine, &policy, ids](FlopCounter* f) {
    for (int64_t b = 0; b < ids.size(0); ++b) policy.begin_request(b);
    SkipKvCache kv = engine.make_cache(ids.size(0), ids.size(1));
    StepContext ctx = step_ctx(m, at::ones(ids.sizes(), ids.options().dtype(at::kBool)), true);
    ctx.flops = f;
    engine.step(ids, ctx, kv, policy, f, nullptr);
  };
  SkipPhase r;
  r.timed = [&m, once] {
    synchronize(m.device());
    const Stopwatch clock;
    once(nullptr);
    synchronize(m.device());
    return clock.seconds();
  };
  FlopCounter f;
  once(&f);
  r.flops = f.total();
  return r;
}

// `steps` decode steps at batch B after a prompt of ids [B, P] (the prefill untimed); tokens
// are fed back from the device argmax, nothing read to the host inside the timed loop. eager:
// a SkipEngine step each; fixed / graph (a policy with bypass_layers() only): the fixed-shape
// step without the bypassed layers, graph-captured (model/fixed_decode.h; the capture inside
// the timed decode), its FLOPs those of the eager steps (the same layers run).
SkipPhase skip_decode(const Transformer& m, const SkipEngine& engine, SkipPolicy& policy, const at::Tensor& ids,
                      int64_t steps, DecodeMode mode) {
  const std::optional<std::vector<int64_t>> bypass = policy.bypass_layers();
  SEMSKIP_ASSERT(mode == DecodeMode::eager || bypass.has_value());
  const auto once = [&m, &engine, &policy, ids, steps, bypass](FlopCounter* f, DecodeMode how) {
    const int64_t B = ids.size(0);
    for (int64_t b = 0; b < B; ++b) policy.begin_request(b);
    SkipKvCache kv = engine.make_cache(B, ids.size(1) + steps);
    StepContext pc = step_ctx(m, at::ones(ids.sizes(), ids.options().dtype(at::kBool)), true);
    at::Tensor next = engine.step(ids, pc, kv, policy, nullptr, nullptr).select(1, ids.size(1) - 1).argmax(-1);
    synchronize(m.device());
    const Stopwatch clock;
    if (how == DecodeMode::eager) {
      const at::Tensor live = at::ones({B, 1}, ids.options().dtype(at::kBool));
      for (int64_t s = 0; s < steps; ++s) {
        StepContext dc = step_ctx(m, live, false);
        dc.flops = f;
        next = engine.step(next.view({B, 1}), dc, kv, policy, f, nullptr).select(1, 0).argmax(-1);
      }
    } else {
      decode_fixed(m, kv, next, steps, how == DecodeMode::graph, std::nullopt, *bypass);
    }
    synchronize(m.device());
    return clock.seconds();
  };
  SkipPhase r;
  r.timed = [once, mode] { return once(nullptr, mode); };
  FlopCounter f;
  once(&f, DecodeMode::eager);
  r.flops = f.total();
  return r;
}

// The full model's and a policy's runs of one phase timed in alternation (warm-ups, then one
// run of each per repetition), so that a drift of the machine over the measurement reaches
// both sides of the ratio alike.
std::pair<TimingStats, TimingStats> paired(const SkipPhase& none, const SkipPhase& p, const TimingProtocol& protocol) {
  for (int i = 0; i < protocol.warmup; ++i) none.timed(), p.timed();
  std::vector<double> a, b;
  for (int i = 0; i < protocol.reps; ++i) {
    a.push_back(none.timed());
    b.push_back(p.timed());
  }
  return {summarize_samples(a), summarize_samples(b)};
}

// A Kineto trace of fn() at `path` (CUDA builds).
void trace_to(const std::string& path, const std::function<void()>& fn, const at::Device& device) {
#ifdef SEMSKIP_CUDA
  namespace tap = torch::autograd::profiler;
  namespace tpi = torch::profiler::impl;
  const tpi::ProfilerConfig config(tpi::ProfilerState::KINETO);
  const std::set<tpi::ActivityType> activities{tpi::ActivityType::CPU, tpi::ActivityType::CUDA};
  tap::prepareProfiler(config, activities);
  tap::enableProfiler(config, activities);
  fn();
  synchronize(device);
  tap::disableProfiler()->save(path);
#else
  (void)path, (void)fn, (void)device;
  SEMSKIP_THROW_MSG("a Kineto trace needs a CUDA build");
#endif
}

json skip_row(const std::string& policy, RowExec mode, const std::string& phase, int64_t batch, int64_t tokens,
              const SkipPhase& none, const SkipPhase& p, const TimingProtocol& protocol,
              const char* decode_mode = nullptr) {
  const auto [t_none, t] = paired(none, p, protocol);
  const double wall = 1.0 - t.median_s / t_none.median_s;
  const double fl = 1.0 - static_cast<double>(p.flops) / static_cast<double>(none.flops);
  return {{"policy", policy},      {"skip_exec", row_exec_name(mode)}, {"phase", phase},       {"batch", batch},
          {"decode_mode", decode_mode ? decode_mode : ""},
          {"tokens", tokens},      {"t_s", t.median_s},  {"t_none_s", t_none.median_s},
          {"flops", p.flops},      {"flops_none", none.flops},
          {"wall_saving", wall},   {"flops_saving", fl},
          {"wall_over_flops_saving", fl > 0 ? wall / fl : 0.0},
          {"timing", stats_json(t)}, {"timing_none", stats_json(t_none)}};
}

// Every --skip policy against none, prefill and decode.
json skipping(const Options& o, const Transformer& model, const TimingProtocol& protocol) {
  const int64_t vocab = model.config().vocab_size;
  const SkipEngine engine(model);
  const auto ids_of = [&](int64_t batch, int64_t len) {
    return at::tensor(prompt_ids(len, vocab), at::kLong).unsqueeze(0).expand({batch, len}).contiguous().to(model.device());
  };
  const at::Tensor prefill_ids = ids_of(o.skip_prefill_batch, o.skip_prefill_len);
  const at::Tensor decode_ids = ids_of(o.skip_decode_batch, o.prompt_len);
  PolicyEnv env = model_policy_env(model.config());
  env.device = model.device();
  const std::unique_ptr<SkipPolicy> none = make_policy("none", env);
  const SkipPhase none_prefill = skip_prefill(model, engine, *none, prefill_ids);
  std::vector<DecodeMode> decode_modes;
  for (const std::string& m : o.skip_decode_modes) {
    const DecodeMode dm = parse_decode_mode(m, "option --skip-decode-mode");
    SEMSKIP_THROW_IF_NOT_MSG(dm != DecodeMode::auto_, "option --skip-decode-mode: give eager, fixed or graph");
    decode_modes.push_back(dm);
  }
  std::vector<SkipPhase> none_decode;
  for (const DecodeMode dm : decode_modes)
    none_decode.push_back(skip_decode(model, engine, *none, decode_ids, o.skip_decode_steps, dm));
  std::vector<RowExec> modes;
  for (const std::string& m : o.skip_exec) modes.push_back(parse_row_exec(m, "option --skip-exec"));
  json rows = json::array();
  bool traced = o.skip_profile_out.empty();
  for (const std::string& desc : o.skip) {
    for (const RowExec mode : modes) {
      // A fresh policy per mode: each starts from the same state (random streams, calibration).
      const std::unique_ptr<SkipPolicy> policy = make_policy(desc, env);
      SkipEngine skipping_engine(model, nullptr, mode);
      if (policy->needs_calibration()) {
        // Block influence on the bench's own prefill: the residual stream of every layer.
        const at::Tensor calib_ids = ids_of(1, o.skip_prefill_len);
        SkipKvCache kv = engine.make_cache(1, calib_ids.size(1));
        StepContext ctx = step_ctx(model, at::ones(calib_ids.sizes(), calib_ids.options().dtype(at::kBool)), true);
        at::Tensor states;
        engine.step(calib_ids, ctx, kv, *none, nullptr, nullptr, &states);
        policy->calibrate(CalibrationSet{states.flatten(1, 2).to(at::kCPU, at::kFloat)});
      }
      SEMSKIP_THROW_IF_NOT_MSG(!policy->needs_full_states(), "--skip {}: a policy that needs the full model's states is not a speed policy", desc);
      const SkipPhase pre = skip_prefill(model, skipping_engine, *policy, prefill_ids);
      rows.push_back(
          skip_row(policy->describe(), mode, "prefill", o.skip_prefill_batch, o.skip_prefill_len, none_prefill, pre,
                   protocol));
      std::fprintf(stderr, "skip %s, %s: prefill wall %.3f / flops %.3f\n", policy->describe().c_str(),
                   row_exec_name(mode), rows.back()["wall_saving"].get<double>(),
                   rows.back()["flops_saving"].get<double>());
      if (!traced) {
        // One skipping prefill of the first policy and row execution, traced.
        trace_to(o.skip_profile_out, [&] { pre.timed(); }, model.device());
        traced = true;
      }
      for (size_t i = 0; i < decode_modes.size(); ++i) {
        const DecodeMode dm = decode_modes[i];
        if (dm != DecodeMode::eager && !policy->bypass_layers()) {
          std::fprintf(stderr, "skip %s: decode mode %s runs whole-layer skips only; not measured\n",
                       policy->describe().c_str(), decode_mode_name(dm));
          continue;
        }
        const SkipPhase dec =
            skip_decode(model, skipping_engine, *policy, decode_ids, o.skip_decode_steps, dm);
        rows.push_back(skip_row(policy->describe(), mode, "decode", o.skip_decode_batch, o.skip_decode_steps,
                                none_decode[i], dec, protocol, decode_mode_name(dm)));
        std::fprintf(stderr, "skip %s, %s, decode %s: wall %.3f / flops %.3f\n", policy->describe().c_str(),
                     row_exec_name(mode), decode_mode_name(dm), rows.back()["wall_saving"].get<double>(),
                     rows.back()["flops_saving"].get<double>());
      }
    }
  }
  return rows;
}

int run(const Options& o) {
#ifndef SEMSKIP_CUDA
  SEMSKIP_THROW_IF_NOT_MSG(o.profile_out.empty() && o.skip_profile_out.empty(),
                           "--profile-out and --skip-profile-out need a CUDA build");
#endif
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

  // Decode: the steps after the prefill, per batch size and decode mode. Every mode's tokens
  // are compared with the first mode's (bf16 may differ where two logits nearly tie).
  std::vector<DecodeMode> modes;
  for (const std::string& m : o.decode_modes) modes.push_back(parse_decode_mode(m, "option --decode-mode"));
  json decode = json::array();
  for (int64_t batch : o.decode_batches) {
    const std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(batch), prompt_ids(o.prompt_len, vocab));
    std::vector<std::vector<int64_t>> first_tokens;
    for (DecodeMode mode : modes) {
      GenerateOptions go;
      go.max_new_tokens = o.new_tokens;
      go.decode = mode;
      for (int i = 0; i < o.warmup; ++i) generate_greedy(model, prompts, go);
      std::vector<double> t_decode, t_total, t_capture;
      int64_t steps = 0;
      GenerateResult r;
      for (int i = 0; i < o.reps; ++i) {
        r = generate_greedy(model, prompts, go);
        t_decode.push_back(r.t_decode_s);
        t_total.push_back(r.t_prefill_s + r.t_decode_s);
        t_capture.push_back(r.t_capture_s);
        steps = r.n_decode_steps;
      }
      if (first_tokens.empty()) first_tokens = r.tokens;
      int64_t rows_equal = 0;
      for (size_t b = 0; b < r.tokens.size(); ++b) rows_equal += r.tokens[b] == first_tokens[b] ? 1 : 0;
      const TimingStats td = summarize_samples(t_decode), tt = summarize_samples(t_total);
      const TimingStats tc = summarize_samples(t_capture);
      decode.push_back({{"batch", batch},
                        {"decode_mode", decode_mode_name(r.decode)},
                        {"prompt_tokens", o.prompt_len},
                        {"new_tokens", o.new_tokens},
                        {"decode_steps", steps},
                        {"decode_tokens_per_s", td.rate(static_cast<double>(batch * steps))},
                        {"generate_tokens_per_s", tt.rate(static_cast<double>(batch * o.new_tokens))},
                        {"step_ms", td.median_s * 1e3 / static_cast<double>(std::max<int64_t>(steps, 1))},
                        {"capture_ms", tc.median_s * 1e3},
                        {"rows_equal_first_mode", rows_equal},
                        {"decode_timing", stats_json(td)},
                        {"generate_timing", stats_json(tt)}});
      std::fprintf(stderr, "decode b%lld %s: %.1f tokens/s (%lld of %lld rows as %s)\n", static_cast<long long>(batch),
                   decode_mode_name(r.decode), td.rate(static_cast<double>(batch * steps)),
                   static_cast<long long>(rows_equal), static_cast<long long>(batch), decode_mode_name(modes.front()));
    }
  }
  out["decode"] = decode;
  if (!o.skip.empty()) out["skipping"] = skipping(o, model, protocol);

  if (!o.profile_out.empty()) {
#ifdef SEMSKIP_CUDA
    // One trace per decode mode: the first mode's at --profile-out, the others beside it with
    // the mode before the extension (trace.json -> trace_graph.json).
    const std::vector<std::vector<int64_t>> prompts(1, prompt_ids(o.prompt_len, vocab));
    json traces = json::array();
    for (size_t i = 0; i < modes.size(); ++i) {
      std::string path = o.profile_out;
      if (i > 0) {
        const size_t dot = path.rfind('.');
        const std::string suffix = std::string("_") + decode_mode_name(modes[i]);
        path = dot == std::string::npos ? path + suffix : path.substr(0, dot) + suffix + path.substr(dot);
      }
      GenerateOptions go;
      go.max_new_tokens = std::min<int64_t>(o.new_tokens, 16);
      go.decode = modes[i];
      generate_greedy(model, prompts, go);
      trace_to(path, [&] { generate_greedy(model, prompts, go); }, model.device());
      traces.push_back({{"trace", path}, {"decode_mode", decode_mode_name(modes[i])}});
    }
    out["profile"] = {{"traces", traces}, {"batch", 1}, {"new_tokens", std::min<int64_t>(o.new_tokens, 16)}};
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
  app.add_option("--decode-mode", o.decode_modes,
                 "Decode modes measured, in order (repeatable or comma-separated): eager, fixed, graph")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--prompt-len", o.prompt_len, "Prompt tokens before decoding")->capture_default_str();
  app.add_option("--new-tokens", o.new_tokens, "Tokens generated per sequence")->capture_default_str();
  app.add_option("--prefill-batch", o.prefill_batch, "Prefill batch")->capture_default_str();
  app.add_option("--prefill-len", o.prefill_len, "Prefill tokens per sequence")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed runs before each measurement")->capture_default_str();
  app.add_option("--reps", o.reps, "Timed runs of each measurement (the median is reported)")->capture_default_str();
  app.add_option("--copy-gib", o.copy_gib, "Size of the bandwidth copy, GiB")->capture_default_str();
  app.add_option("--skip", o.skip, "A skip policy to time against none (repeatable): static:k=6, random:rate=0.25");
  app.add_option("--skip-exec", o.skip_exec, "Row execution of the skipping runs (repeatable): gather, bucket, mask")
      ->capture_default_str();
  app.add_option("--skip-decode-batch", o.skip_decode_batch, "Decode batch of the skipping runs")->capture_default_str();
  app.add_option("--skip-decode-steps", o.skip_decode_steps, "Timed decode steps of the skipping runs")->capture_default_str();
  app.add_option("--skip-prefill-batch", o.skip_prefill_batch, "Prefill batch of the skipping runs")->capture_default_str();
  app.add_option("--skip-prefill-len", o.skip_prefill_len, "Prefill tokens per sequence of the skipping runs")->capture_default_str();
  app.add_option("--skip-decode-mode", o.skip_decode_modes,
                 "Decode modes of the skipping runs (repeatable or comma-separated): eager; fixed and graph "
                 "(the fixed-shape step without the bypassed layers) for whole-layer policies only")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--skip-profile-out", o.skip_profile_out,
                 "Write a Kineto trace of one skipping prefill of the first --skip policy (CUDA builds)");
  app.add_option("--profile-out", o.profile_out, "Write a Kineto trace of one batch-1 generation (CUDA builds)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_engine: error: %s\n", e.what());
    return 1;
  }
}
