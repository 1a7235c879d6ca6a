// semskip generate: greedy generation with the KV cache; prints the continuation and the
// throughput of prefill and decode.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/hf_cache.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/paths.h"
#include "drivers/command.h"
#include "metrics/timing.h"
#include "metrics/finite_check.h"
#include "model/generation.h"
#include "model/hooks.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

namespace semskip {

namespace {

using nlohmann::json;

struct GenerateCliOptions {
  std::string model;  // empty: the embedded default
  std::string prompt;
  int64_t prompt_tokens = 0;  // > 0: a synthetic prompt of this many ids instead of --prompt
  int64_t batch = 1;
  int64_t max_new_tokens = 32;
  std::string dtype = "fp32";
  std::string device = "cpu";
  std::string attn = attn_impl_name(kDefaultAttnImpl);
  bool random_init = false;
  uint64_t seed = 0;
  bool ignore_eos = false;
  bool json = false;
  int warmup = 1;  // untimed generations first (kernel selection, allocator, caches)
  int reps = 1;    // timed generations; rates are their medians
  int64_t max_model_len = 0;  // 0: the model's max_position_embeddings
  bool check_weights = false;
  std::string decode_mode = "auto";  // model/generation.h DecodeMode
};

// Prompt plus generated tokens must fit the positions the model was trained on, unless the
// user raised the limit (then positions past training are extrapolated).
void check_context(const ModelConfig& c, const std::string& dir, int64_t n_prompt, int64_t n_new,
                   int64_t max_model_len) {
  const int64_t trained = c.max_position_embeddings;
  if (trained <= 0 && max_model_len == 0) return;  // the config states no limit
  const int64_t limit = max_model_len > 0 ? max_model_len : trained;
  // (Transformer::build warns when max_model_len exceeds the trained positions.)
  SEMSKIP_THROW_IF_NOT_MSG(n_prompt + n_new <= limit,
                           "generate: the prompt ({} tokens) plus --max-new-tokens {} is {} positions, more than the "
                           "{} of {} ({}); raise the limit with --max-model-len (positions past training are "
                           "extrapolated)",
                           n_prompt, n_new, n_prompt + n_new, limit, max_model_len > 0 ? "--max-model-len" : "the model",
                           max_model_len > 0 ? "given" : fmt::format("max_position_embeddings in {}/config.json", dir));
}

// --check-weights: every tensor of the checkpoint read once; non-finite ones are named.
void refuse_non_finite_weights(const std::string& dir) {
  const std::vector<NonFiniteTensor> bad = non_finite_tensors(Checkpoint(dir));
  if (bad.empty()) return;
  std::string list;
  for (const NonFiniteTensor& t : bad)
    list += fmt::format("\n  {}: {} NaN, {} inf of {} values", t.name, t.n_nan, t.n_inf, t.numel);
  SEMSKIP_THROW_MSG("{}: {} tensor(s) hold non-finite weights:{}", dir, bad.size(), list);
}

int run_generate(const GenerateCliOptions& o) {
  const std::string dir = o.model.empty() ? embedded_model_dir(kDefaultModel) : resolve_model_arg(o.model);
  SEMSKIP_THROW_IF_NOT_MSG(o.prompt.empty() != (o.prompt_tokens == 0),
                           "generate: give exactly one of --prompt TEXT and --prompt-tokens N");
  SEMSKIP_THROW_IF_NOT_MSG(o.batch >= 1, "generate: --batch must be >= 1, got {}", o.batch);
  SEMSKIP_THROW_IF_NOT_MSG(o.max_new_tokens >= 1, "generate: --max-new-tokens must be >= 1, got {}", o.max_new_tokens);
  SEMSKIP_THROW_IF_NOT_MSG(o.prompt_tokens >= 0, "generate: --prompt-tokens must be >= 0, got {}", o.prompt_tokens);
  SEMSKIP_THROW_IF_NOT_MSG(o.max_model_len >= 0, "generate: --max-model-len must be >= 0, got {}", o.max_model_len);
  ModelOptions mo;
  mo.dtype = parse_dtype(o.dtype, "option --dtype");
  mo.device = parse_device(o.device, "option --device");
  mo.attn_impl = parse_attn_impl(o.attn, "option --attn");
  mo.random_init = o.random_init;
  mo.seed = o.seed;
  mo.max_model_len = o.max_model_len;
  const Transformer model = Transformer::load(dir, mo);
  if (o.check_weights && !o.random_init) refuse_non_finite_weights(dir);

  std::unique_ptr<Tokenizer> tok;
  const std::string tok_path = (std::filesystem::path(dir) / "tokenizer.json").string();
  if (std::filesystem::exists(tok_path)) tok = std::make_unique<Tokenizer>(Tokenizer::from_file(tok_path));
  std::vector<int64_t> prompt;
  if (!o.prompt.empty()) {
    SEMSKIP_THROW_IF_NOT_MSG(tok != nullptr, "generate: --prompt needs {} (or use --prompt-tokens N)", tok_path);
    for (int32_t id : tok->encode(o.prompt)) prompt.push_back(id);
    SEMSKIP_THROW_IF_NOT_MSG(!prompt.empty(), "generate: --prompt encodes to no tokens");
  } else {
    // A fixed pseudo-random prompt: speed runs need a length, not a text.
    const int64_t vocab = model.config().vocab_size;
    for (int64_t i = 0; i < o.prompt_tokens; ++i) prompt.push_back((i * 7919 + 13) % vocab);
  }
  for (int64_t id : prompt) {
    SEMSKIP_THROW_IF_NOT_MSG(id >= 0 && id < model.config().vocab_size,
                             "generate: token id {} outside the model's vocabulary of {}", id, model.config().vocab_size);
  }

  check_context(model.config(), dir, static_cast<int64_t>(prompt.size()), o.max_new_tokens, o.max_model_len);
  // Before the batch's copies of the prompt: a --batch or context the KV cache cannot hold is refused.
  model.check_kv_cache_fits(o.batch, static_cast<int64_t>(prompt.size()) + o.max_new_tokens);

  GenerateOptions go;
  go.max_new_tokens = o.max_new_tokens;
  go.decode = parse_decode_mode(o.decode_mode, "option --decode-mode");
  if (!o.ignore_eos && model.config().eos_token_id >= 0) go.eos_token_id = model.config().eos_token_id;
  const std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(o.batch), prompt);
  SEMSKIP_THROW_IF_NOT_MSG(o.warmup >= 0 && o.reps >= 1, "generate: --warmup must be >= 0 and --reps >= 1");
  // Greedy decoding is deterministic: every repetition generates the same tokens, and the
  // timings of the timed ones are summarised (median, min, max).
  // The first generation (a warm-up one when there is one, so the timed ones carry no check)
  // folds every layer's output into device flags, read once at its end: a NaN in the weights
  // or the activations is an error naming the layer, never a run that stops at once.
  FiniteFlags finite(model.config().n_layers, mo.device);
  HookSet finite_hooks;
  for (int64_t l = 0; l < model.config().n_layers; ++l)
    finite_hooks.add(l, HookPoint::resid_post, [&finite](const at::Tensor& x, const HookSite& site) {
      finite.fold(site.layer, x);
      return std::optional<at::Tensor>();
    });
  // The check needs hooks, which only the eager decode runs: with another decode mode it is a
  // generation of its own, before the warm-ups.
  // (auto resolves to eager on CPU.)
  const bool check_apart = go.decode == DecodeMode::fixed || go.decode == DecodeMode::graph ||
                           (go.decode == DecodeMode::auto_ && mo.device.is_cuda());
  auto generate_checked = [&](bool check) {
    GenerateOptions g = go;
    if (check) g.hooks = &finite_hooks;
    if (check) g.decode = DecodeMode::eager;
    GenerateResult res = generate_greedy(model, prompts, g);
    if (check) {
      const int64_t bad = finite.first_bad();
      SEMSKIP_THROW_IF_NOT_MSG(bad < 0,
                               "generate: non-finite values (NaN or inf) in the hidden states of {}, first at the "
                               "output of layer {} ({}) for the prompt of {} tokens; `semskip info --model {} "
                               "--check-weights` names non-finite weights",
                               dir, bad, hook_name(bad, HookPoint::resid_post), prompt.size(), dir);
    }
    return res;
  };
  if (check_apart) generate_checked(true);
  for (int i = 0; i < o.warmup; ++i) generate_checked(!check_apart && i == 0);
  std::vector<double> t_prefill, t_decode;
  GenerateResult r;
  for (int i = 0; i < o.reps; ++i) {
    r = generate_checked(!check_apart && o.warmup == 0 && i == 0);
    t_prefill.push_back(r.t_prefill_s);
    t_decode.push_back(r.t_decode_s);
  }
  const TimingStats prefill_t = summarize_samples(t_prefill);
  const TimingStats decode_t = summarize_samples(t_decode);
  r.t_prefill_s = prefill_t.median_s;
  r.t_decode_s = decode_t.median_s;

  const std::vector<int64_t>& out = r.tokens.front();
  std::string text;
  if (tok) {
    const std::vector<int32_t> ids(out.begin(), out.end());
    text = tok->decode(ids);
  }
  const double prefill_tps = r.t_prefill_s > 0 ? static_cast<double>(r.n_tokens_prompt) / r.t_prefill_s : 0.0;
  const int64_t n_decoded = r.n_decode_steps * o.batch;
  const double decode_tps = r.t_decode_s > 0 ? static_cast<double>(n_decoded) / r.t_decode_s : 0.0;
  if (o.json) {
    json j = {{"model", dir},
              {"dtype", dtype_name(mo.dtype)},
              {"device", mo.device.str()},
              {"attn", attn_impl_name(mo.attn_impl)},
              {"batch", o.batch},
              {"prompt_ids", prompt},
              {"generated_ids", out},
              {"n_tokens_prompt", r.n_tokens_prompt},
              {"n_tokens_gen", r.n_tokens_gen},
              {"n_decode_steps", r.n_decode_steps},
              {"decode_mode", decode_mode_name(r.decode)},
              {"t_capture_s", r.t_capture_s},
              {"warmup", o.warmup},
              {"reps", o.reps},
              {"t_prefill_s", r.t_prefill_s},
              {"t_decode_s", r.t_decode_s},
              {"t_prefill_samples_s", prefill_t.samples_s},
              {"t_decode_samples_s", decode_t.samples_s},
              {"prefill_tokens_per_s", prefill_tps},
              {"decode_tokens_per_s", decode_tps}};
    if (tok) j["text"] = text;
    std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return 0;
  }
  if (tok) {
    std::printf("%s%s\n", o.prompt.c_str(), text.c_str());
  } else {
    std::printf("%s\n", fmt::format("{}", fmt::join(out, " ")).c_str());
  }
  std::fflush(stdout);
  std::fprintf(stderr,
               "prefill: %lld tokens in %.4f s (%.1f tokens/s); decode: %lld steps × %lld sequences in %.4f s "
               "(%.1f tokens/s) [%s, %s, %s, decode %s; median of %d after %d warm-up]\n",
               (long long)r.n_tokens_prompt, r.t_prefill_s, prefill_tps, (long long)r.n_decode_steps,
               (long long)o.batch, r.t_decode_s, decode_tps, dtype_name(mo.dtype), mo.device.str().c_str(),
               attn_impl_name(mo.attn_impl), decode_mode_name(r.decode), o.reps, o.warmup);
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, CommandRegistry& reg) {
  auto o = std::make_shared<GenerateCliOptions>();
  CLI::App* sub = reg.add(app, "generate", "Greedy generation with the KV cache; prints prefill and decode tokens/s",
                          [o] { return run_generate(*o); });
  sub->add_option("--model", o->model, "Hugging Face model folder (default: the embedded tiny-dense)");
  sub->add_option("--prompt", o->prompt, "Prompt text (encoded with the model's tokenizer.json)");
  sub->add_option("--prompt-tokens", o->prompt_tokens, "Use a synthetic prompt of N token ids instead (speed runs)");
  sub->add_option("--batch", o->batch, "Sequences generated together (copies of the prompt)")->capture_default_str();
  sub->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "Compute dtype: fp32, bf16 or fp16")->capture_default_str();
  sub->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--attn", o->attn, "Attention implementation: eager or sdpa")->capture_default_str();
  sub->add_flag("--random-init", o->random_init, "Random weights from config.json alone (N(0, initializer_range))");
  sub->add_option("--seed", o->seed, "Seed of --random-init")->capture_default_str();
  sub->add_flag("--ignore-eos", o->ignore_eos, "Always generate --max-new-tokens tokens");
  sub->add_flag("--json", o->json, "Print one JSON object");
  sub->add_option("--warmup", o->warmup, "Untimed generations before the timed ones")->capture_default_str();
  sub->add_option("--reps", o->reps, "Timed generations; the rates printed are their medians")->capture_default_str();
  sub->add_option("--max-model-len", o->max_model_len,
                  "Positions allowed (prompt + new tokens); 0: the model's max_position_embeddings. Above it, "
                  "positions past training are extrapolated (a warning says so)")
      ->capture_default_str();
  sub->add_option("--decode-mode", o->decode_mode,
                  "Decode steps: eager (one forward per step), fixed (fixed shapes), graph (fixed shapes, one "
                  "CUDA graph replayed per step), auto (graph on CUDA unless something needs the eager forward)")
      ->capture_default_str();
  sub->add_flag("--check-weights", o->check_weights, "Read every weight first and refuse non-finite ones, by tensor name");
}

}  // namespace semskip
