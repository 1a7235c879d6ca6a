#include "model/transformer.h"

#include <cstdio>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <ATen/Context.h>
#include <torch/version.h>

#include "core/error.h"
#include "core/hf_cache.h"
#include "core/strings.h"
#include "metrics/flop_formulas.h"
#include "model/arch/architecture.h"
#include "model/arch/blocks.h"
#include "model/device_memory.h"
#include "model/safetensors.h"

namespace semskip {

namespace {

// initializer_range is not part of ModelConfig (it only matters to random init).
double config_initializer_range(const std::string& config_path) {
  const nlohmann::json j = nlohmann::json::parse(read_file(config_path), nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("initializer_range") && j["initializer_range"].is_number()) {
    return j["initializer_range"].get<double>();
  }
  return 0.02;
}

}  // namespace

Transformer Transformer::load(const std::string& model_arg, const ModelOptions& options) {
  // A folder, or a Hugging Face id found in the local hub cache (core/hf_cache.h).
  const std::string model_dir = resolve_model_arg(model_arg);
  const std::string config_path = (std::filesystem::path(model_dir) / "config.json").string();
  const ModelConfig config = ModelConfig::from_file(config_path);
  // Absurd shapes are refused before any allocation, with config.json's fields named: the
  // weights this process holds (its experts only, under expert parallelism) against the memory
  // of the device they go to.
  const MemoryBound memory = memory_bound(options.device);
  config.check_weights_fit(double(dtype_size(options.dtype)), memory.bytes, memory.name,
                           options.experts.all() ? -1 : options.experts.count);
  if (options.random_init) {
    const double std = options.init_std > 0 ? options.init_std : config_initializer_range(config_path);
    RandomWeights weights(options.seed, std, scalar_type(options.dtype), options.device);
    return build(config, weights, options);
  }
  const Checkpoint ckpt(model_dir);
  CheckpointWeights weights(ckpt, scalar_type(options.dtype), options.device);
  Transformer t = build(config, weights, options);
  // As transformers does: tensors the architecture does not use are ignored, with a warning
  // (a checkpoint of another variant, or a model_type that does not match its weights).
  const std::vector<std::string> unused = weights.unused();
  if (!unused.empty()) {
    std::string shown;
    for (size_t i = 0; i < unused.size() && i < 5; ++i) shown += (i ? ", " : "") + unused[i];
    if (unused.size() > 5) shown += fmt::format(" and {} more", unused.size() - 5);
    std::fprintf(stderr, "semskip: warning: %s: the %s architecture does not use %zu of the checkpoint's tensors; "
                         "ignored: %s\n",
                 model_dir.c_str(), config.model_type.c_str(), unused.size(), shown.c_str());
  }
  return t;
}

Transformer Transformer::build(const ModelConfig& config, WeightSource& weights, const ModelOptions& options) {
  const ModelConfig& c = config;
  SEMSKIP_THROW_IF_NOT_MSG(c.n_layers > 0 && c.hidden_size > 0 && c.vocab_size > 0 && c.n_heads > 0 &&
                               c.n_kv_heads > 0 && c.head_dim > 0,
                           "{}: layers, hidden size, vocabulary, heads and head_dim must be > 0", c.source);
  SEMSKIP_THROW_IF_NOT_MSG(c.n_heads % c.n_kv_heads == 0,
                           "{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", c.source,
                           c.n_heads, c.n_kv_heads);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  // cuDNN's fused attention builds an execution plan for every new shape of its inputs: on an
  // H200 (PyTorch 2.11) a first call cost 41 ms (median, up to 1.2 s) against 0.08 ms for the
  // memory-efficient kernel, and repeats took 0.19 against 0.07 ms (bench/gpu/sdpa_shapes.py).
  // Key lengths change every decoding step, so SDPA is left to the flash and memory-efficient
  // kernels.
  if (weights.device().is_cuda()) at::globalContext().setSDPUseCuDNN(false);
#endif
#if TORCH_VERSION_MAJOR < 2
  SEMSKIP_THROW_IF_NOT_MSG(!(options.dtype == DType::fp16 && weights.device().is_cpu()),
                           "{}: fp16 compute on CPU needs LibTorch 2.x (this build has {}); use bf16 or fp32",
                           c.source, TORCH_VERSION);
#endif
  SEMSKIP_THROW_IF_NOT_MSG(weights.dtype() == scalar_type(options.dtype),
                           "{}: the weight source's dtype differs from the compute dtype", c.source);
  SEMSKIP_THROW_IF_NOT_MSG(options.max_model_len >= 0, "{}: max_model_len must be >= 0 (0: the config's {}), got {}",
                           c.source, c.max_position_embeddings, options.max_model_len);
  if (options.max_model_len > c.max_position_embeddings) {
    std::fprintf(stderr,
                 "semskip: warning: %s: max_model_len %lld exceeds max_position_embeddings %lld: positions past "
                 "the model's trained context extrapolate RoPE\n",
                 c.source.c_str(), static_cast<long long>(options.max_model_len),
                 static_cast<long long>(c.max_position_embeddings));
  }
  Transformer t;
  t.config_ = config;
  t.options_ = options;
  t.options_.device = weights.device();
  t.embed_tokens_ = weights.get("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, WeightInit::normal);
  t.layers_.reserve(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) t.layers_.push_back(build_decoder_layer(c, l, weights, options));
  t.norm_ = arch::rms_norm(weights, "model.norm", c.hidden_size, c.rms_norm_eps);
  t.lm_head_.weight = c.tie_word_embeddings
                          ? t.embed_tokens_
                          : weights.get("lm_head.weight", {c.vocab_size, c.hidden_size}, WeightInit::normal);
  // RoPE angles are computed where the activations live; a meta model only carries shapes.
  t.rotary_ = Rotary(c, weights.device().is_meta() ? at::Device(at::kCPU) : weights.device());
  return t;
}

int64_t Transformer::position_limit() const {
  return options_.max_model_len > 0 ? options_.max_model_len : config_.max_position_embeddings;
}

const DecoderLayer& Transformer::layer(int64_t l) const {
  SEMSKIP_THROW_IF_NOT_MSG(l >= 0 && l < n_layers(), "layer {} out of range [0, {})", l, n_layers());
  return layers_[static_cast<size_t>(l)];
}

at::Tensor Transformer::embed(const at::Tensor& ids) const {
  SEMSKIP_THROW_IF_NOT_MSG(ids.dim() == 2 && ids.scalar_type() == at::kLong,
                           "forward: token ids must be int64 [B, T], got {} of {} dims",
                           c10::toString(ids.scalar_type()), ids.dim());
  return at::embedding(embed_tokens_, ids.to(device()));
}

at::Tensor Transformer::final_norm(const at::Tensor& resid) const { return norm_.forward(resid); }

at::Tensor Transformer::lm_head(const at::Tensor& x, FlopCounter* flops) const {
  return lm_head_.forward(x, flops, FlopCounter::kNoLayer, OpGroup::lm_head);
}

LayerContext Transformer::make_context(int64_t batch, int64_t n_tokens, int64_t first_layer,
                                       const ForwardOptions& o) const {
  LayerContext ctx;
  ctx.kv_cache = o.kv_cache;
  ctx.hooks = o.hooks;
  ctx.flops = o.flops;
  ctx.moe_executor = o.moe_executor;
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device());
  at::Tensor valid = o.attention_mask;  // bool [B, T] or undefined
  if (valid.defined()) {
    SEMSKIP_THROW_IF_NOT_MSG(valid.dim() == 2 && valid.size(0) == batch && valid.size(1) == n_tokens,
                             "forward: attention_mask must be [B, T] = [{}, {}]", batch, n_tokens);
    valid = valid.to(device(), at::kBool);
  }
  int64_t start = 0;
  bool padding = false;
  if (o.kv_cache) {
    SEMSKIP_THROW_IF_NOT_MSG(o.kv_cache->batch() == batch && o.kv_cache->n_layers() == n_layers(),
                             "forward: the KV cache holds {} sequences of {} layers, the input {} of {}",
                             o.kv_cache->batch(), o.kv_cache->n_layers(), batch, n_layers());
    start = o.kv_cache->length(first_layer);
    o.kv_cache->set_valid(start, n_tokens, valid);
    padding = o.kv_cache->has_padding();
  } else {
    padding = valid.defined() && !valid.all().item<bool>();
  }
  const int64_t n_keys = start + n_tokens;

  at::Tensor positions = o.positions;  // int64 [B, T]
  if (positions.defined()) {
    SEMSKIP_THROW_IF_NOT_MSG(positions.dim() == 2 && positions.size(0) == batch && positions.size(1) == n_tokens,
                             "forward: positions must be [B, T] = [{}, {}]", batch, n_tokens);
    positions = positions.to(device(), at::kLong);
  } else if (!padding) {
    positions = at::arange(start, n_keys, long_opts).unsqueeze(0).expand({batch, n_tokens});
  } else {
    const at::Tensor before = o.kv_cache ? o.kv_cache->n_valid_before(start).unsqueeze(1)
                                         : at::zeros({batch, 1}, long_opts);
    const at::Tensor new_valid = valid.defined() ? valid.to(at::kLong) : at::ones({batch, n_tokens}, long_opts);
    positions = (before + new_valid.cumsum(1) - 1).clamp_min(0);
  }
  // RoPE computes any position, so nothing else would notice one past the model's context.
  // Without padding or explicit positions the last one is known on the host (no device sync).
  const int64_t limit = position_limit();
  const bool derived = !o.positions.defined() && !padding;
  const int64_t last = derived ? n_keys - 1 : (n_tokens > 0 ? positions.max().item<int64_t>() : -1);
  if (last >= limit) {
    const std::string which = options_.max_model_len > 0
                                  ? fmt::format("ModelOptions::max_model_len = {}", limit)
                                  : fmt::format("max_position_embeddings = {}", limit);
    SEMSKIP_THROW_MSG("{}: forward reaches position {} (tokens at positions {}..{}), but {} allows positions 0..{} "
                      "only; ModelOptions::max_model_len raises the limit",
                      config_.source, last, derived ? start : positions.min().item<int64_t>(), last, which,
                      limit - 1);
  }
  ctx.rope = rotary_.table(positions, dtype());
  if (o.flops) o.flops->add(FlopCounter::kNoLayer, OpGroup::rotary, flops::rotary(rotary_.head_dim(), batch * n_tokens));

  ctx.first_slot = start;
  ctx.row_exec = o.row_exec;
  if (o.plan) ctx.valid = valid;
  if (o.plan && valid.defined()) {
    // Every layer of a planned forward with padding gathers its rows and builds its own mask.
  } else if (!padding) {
    ctx.mask = AttentionMask::causal_block(batch, n_tokens, n_keys);
  } else {
    const at::Tensor key_valid = o.kv_cache ? o.kv_cache->key_valid(n_keys) : valid;
    ctx.mask = AttentionMask::from_slots(at::arange(start, n_keys, long_opts), key_valid, batch, n_keys, dtype(),
                                         /*count_pairs=*/o.flops != nullptr);
  }
  return ctx;
}

at::Tensor Transformer::forward(const at::Tensor& input, const ForwardOptions& o) const {
  const int64_t n = n_layers();
  const int64_t start = o.start_at_layer.value_or(0);
  int64_t stop = o.stop_at_layer.value_or(n);
  if (stop < 0) stop += n;
  SEMSKIP_THROW_IF_NOT_MSG(start >= 0 && start <= n, "forward: start_at_layer {} outside [0, {}]", start, n);
  SEMSKIP_THROW_IF_NOT_MSG(stop >= start && stop <= n, "forward: stop_at_layer {} outside [{}, {}]",
                           o.stop_at_layer.value_or(n), start, n);
  at::Tensor x;
  if (!o.start_at_layer) {
    x = embed(input);
  } else {
    SEMSKIP_THROW_IF_NOT_MSG(input.dim() == 3 && input.size(2) == config_.hidden_size &&
                                 input.scalar_type() == dtype() && input.device() == device(),
                             "forward: with start_at_layer the input is the residual stream [B, T, {}] in the "
                             "compute dtype {} on {}",
                             config_.hidden_size, c10::toString(dtype()), device().str());
    x = input;
  }
  const int64_t batch = x.size(0), n_tokens = x.size(1);
  // A plan writes keys row by row, so it always has a cache: the caller's or this forward's.
  std::optional<KvCache> own_cache;
  ForwardOptions fo = o;
  if (o.plan && !o.kv_cache) {
    own_cache.emplace(make_kv_cache(batch, n_tokens));
    fo.kv_cache = &*own_cache;
  }
  at::Tensor valid;  // bool [B, T] under a plan with padding
  if (start < stop) {
    LayerContext ctx = make_context(batch, n_tokens, start, fo);
    std::vector<PendingPairs> pending;
    if (o.flops) ctx.pending_pairs = &pending;
    valid = ctx.valid;
    for (int64_t l = start; l < stop; ++l) {
      const DecoderLayer& layer = layers_[static_cast<size_t>(l)];
      if (!o.plan) {
        x = layer.forward(x, ctx);
        continue;
      }
      const LayerPlan lp = o.plan->layer(l, x);
      x = layer.forward_planned(x, ctx, lp, o.plan);
      o.plan->after_layer(l, x);
    }
    // The attention pairs counted on the device, read in one transfer.
    if (!pending.empty()) {
      std::vector<at::Tensor> counts;
      for (const PendingPairs& p : pending) counts.push_back(p.pairs_causal);
      const at::Tensor host = at::stack(counts).to(at::kCPU, at::kLong);
      for (size_t i = 0; i < pending.size(); ++i) {
        const PendingPairs& p = pending[i];
        o.flops->add_attention(p.layer, p.n_heads, p.head_dim, p.pairs_dense, host[static_cast<int64_t>(i)].item<int64_t>());
      }
    }
  } else if (o.plan && o.attention_mask.defined()) {
    valid = o.attention_mask.to(device(), at::kBool);
  }
  if (o.stop_at_layer) return x;
  if (o.plan && valid.defined()) {
    // Padding runs nothing under a plan, the head included: its logits are zero. With
    // last_token_logits the head sees the last position only.
    const int64_t t_head = o.last_token_logits ? 1 : n_tokens;
    const at::Tensor xh = o.last_token_logits ? x.narrow(1, n_tokens - 1, 1) : x;
    const at::Tensor vh = o.last_token_logits ? valid.narrow(1, n_tokens - 1, 1) : valid;
    const int64_t d = x.size(2), N = batch * t_head;
    const at::Tensor rows = vh.reshape({N}).nonzero().squeeze(1);
    const at::Tensor lv = lm_head(final_norm(xh.reshape({N, d}).index_select(0, rows)), o.flops);  // [n, V]
    at::Tensor logits = at::zeros({N, lv.size(1)}, lv.options());
    logits.index_copy_(0, rows, lv);
    return logits.view({batch, t_head, lv.size(1)});
  }
  x = final_norm(x);
  if (o.last_token_logits) x = x.narrow(1, n_tokens - 1, 1);
  return lm_head(x, o.flops);
}

void Transformer::check_kv_cache_fits(int64_t batch, int64_t capacity) const {
  const MemoryBound memory = memory_bound(device());
  config_.check_kv_cache_fits(double(c10::elementSize(dtype())), batch, capacity, memory.bytes, memory.name);
}

KvCache Transformer::make_kv_cache(int64_t batch, int64_t capacity) const {
  check_kv_cache_fits(batch, capacity);
  return KvCache(n_layers(), batch, config_.n_kv_heads, config_.head_dim, capacity, dtype(), device());
}

int64_t Transformer::n_params() const {
  int64_t n = embed_tokens_.numel() + norm_.weight.numel();
  for (const DecoderLayer& l : layers_) n += l.n_params();
  if (!config_.tie_word_embeddings) n += lm_head_.n_params();
  return n;
}

int64_t Transformer::n_params_active() const {
  int64_t n = n_params();
  for (const DecoderLayer& l : layers_) n -= l.n_params() - l.n_params_active();
  return n;
}

}  // namespace semskip
