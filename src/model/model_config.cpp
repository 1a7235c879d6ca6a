#include "model/model_config.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/error.h"
#include "core/strings.h"
#include "model/json_keys.h"

namespace semskip {

using nlohmann::json;

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::llama:
      return "llama";
    case Arch::qwen2:
      return "qwen2";
    case Arch::qwen2_moe:
      return "qwen2_moe";
    case Arch::mixtral:
      return "mixtral";
    case Arch::olmoe:
      return "olmoe";
  }
  SEMSKIP_ASSERT(false);
}

bool ModelConfig::is_moe_layer(int64_t layer) const {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers);
  switch (arch) {
    case Arch::mixtral:
    case Arch::olmoe:
      return true;
    case Arch::qwen2_moe:
      // As Hugging Face's Qwen2MoeDecoderLayer decides it.
      return std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) == mlp_only_layers.end() &&
             n_experts > 0 && (layer + 1) % decoder_sparse_step == 0;
    default:
      return false;
  }
}

int64_t ModelConfig::n_moe_layers() const {
  if (arch == Arch::mixtral || arch == Arch::olmoe) return n_layers;
  if (arch != Arch::qwen2_moe || n_experts <= 0) return 0;
  // is_moe_layer's rule counted without a loop over n_layers (absurd configs are sized too):
  // the layers (l + 1) % decoder_sparse_step == 0, less those mlp_only_layers forces dense.
  int64_t n = n_layers / decoder_sparse_step;
  std::vector<int64_t> forced = mlp_only_layers;
  std::sort(forced.begin(), forced.end());
  forced.erase(std::unique(forced.begin(), forced.end()), forced.end());
  for (int64_t l : forced)
    if (l >= 0 && l < n_layers && (l + 1) % decoder_sparse_step == 0) --n;
  return n;
}

std::vector<int64_t> ModelConfig::moe_layers() const {
  std::vector<int64_t> layers;
  for (int64_t l = 0; l < n_layers; ++l)
    if (is_moe_layer(l)) layers.push_back(l);
  return layers;
}

int64_t ModelConfig::expert_intermediate_size() const {
  switch (arch) {
    case Arch::mixtral:
    case Arch::olmoe:
      return intermediate_size;
    case Arch::qwen2_moe:
      return moe_intermediate_size;
    default:
      return 0;
  }
}

namespace {

Arch parse_arch(const JsonKeys& k) {
  std::string t = k.req_string("model_type");
  if (t == "llama") return Arch::llama;
  if (t == "qwen2") return Arch::qwen2;
  if (t == "qwen2_moe") return Arch::qwen2_moe;
  if (t == "mixtral") return Arch::mixtral;
  if (t == "olmoe") return Arch::olmoe;
  k.fail("model_type", fmt::format("is '{}', which semskip does not support (supported: llama, qwen2, "
                                   "qwen2_moe, mixtral, olmoe)",
                                   t));
}

// The Hugging Face defaults of each architecture's config class, for keys a config may omit.
double default_rms_norm_eps(Arch a) { return a == Arch::mixtral || a == Arch::olmoe ? 1e-5 : 1e-6; }
double default_rope_theta(Arch a) { return a == Arch::mixtral ? 1e6 : 1e4; }

// Classic layout: "rope_theta" + "rope_scaling" {"rope_type"|"type", "factor", ...} or null.
// New layout: "rope_parameters" {"rope_theta", "rope_type", "factor", ...}, possibly one entry
// per attention type ({"full_attention": {...}}).
void parse_rope(const JsonKeys& top, ModelConfig& c) {
  std::unique_ptr<JsonKeys> params;
  if (top.has("rope_parameters")) {
    params = std::make_unique<JsonKeys>(top.object("rope_parameters"));
    const json& rp = top.at("rope_parameters");
    if (!params->has("rope_type") && !params->has("type") && !params->has("rope_theta") &&
        rp.contains("full_attention"))
      params = std::make_unique<JsonKeys>(params->object("full_attention"));
  } else if (top.has("rope_scaling")) {
    params = std::make_unique<JsonKeys>(top.object("rope_scaling"));
  }

  c.rope_theta = default_rope_theta(c.arch);
  if (params && params->has("rope_theta")) {
    c.rope_theta = params->req_number("rope_theta");
    SEMSKIP_THROW_IF_NOT_MSG(c.rope_theta > 0, "{}: key '{}' must be positive, got {}", top.source(),
                             params->name("rope_theta"), c.rope_theta);
  } else if (top.has("rope_theta")) {
    c.rope_theta = top.req_number("rope_theta");
    SEMSKIP_THROW_IF_NOT_MSG(c.rope_theta > 0, "{}: key 'rope_theta' must be positive, got {}", top.source(),
                             c.rope_theta);
  }

  // Rotating only part of each head is another architecture (e.g. Phi); say so, do not guess.
  for (const JsonKeys* k : {&top, static_cast<const JsonKeys*>(params.get())}) {
    if (k && k->has("partial_rotary_factor") && k->req_number("partial_rotary_factor") != 1.0)
      k->fail("partial_rotary_factor", "is not 1: partial rotary embeddings are not supported");
  }

  RopeScaling& s = c.rope_scaling;
  s = RopeScaling{};
  if (!params) return;
  std::string type_key = params->has("rope_type") ? "rope_type" : "type";
  s.rope_type = params->opt_string(type_key, "default");
  auto positive = [&](const std::string& key) {
    double v = params->req_number(key);
    if (!(v > 0)) params->fail(key, fmt::format("must be positive, got {}", v));
    return v;
  };
  if (s.rope_type == "default") {
    return;
  } else if (s.rope_type == "linear") {
    s.factor = positive("factor");
  } else if (s.rope_type == "llama3") {
    s.factor = positive("factor");
    s.low_freq_factor = positive("low_freq_factor");
    s.high_freq_factor = positive("high_freq_factor");
    s.original_max_position_embeddings = params->req_int_at_least("original_max_position_embeddings", 1);
    // The smoothing between the two wavelength bounds divides by their difference.
    if (!(s.high_freq_factor > s.low_freq_factor))
      params->fail("high_freq_factor", fmt::format("must be greater than low_freq_factor ({} <= {})",
                                                   s.high_freq_factor, s.low_freq_factor));
  } else {
    params->fail(type_key, fmt::format("is '{}', a RoPE scaling semskip does not implement "
                                       "(supported: default, linear, llama3)",
                                       s.rope_type));
  }
}

// Sliding-window attention changes which keys a query sees; semskip attends to the whole
// context, so a config that really limits the window is refused rather than run wrongly.
void check_no_sliding_window(const JsonKeys& k, const ModelConfig& c) {
  std::vector<std::string> layer_types = k.opt_string_list("layer_types");
  if (!layer_types.empty() && static_cast<int64_t>(layer_types.size()) != c.n_layers)
    k.fail("layer_types",
           fmt::format("lists {} layers but num_hidden_layers is {}", layer_types.size(), c.n_layers));
  bool any_sliding_layer = false;
  for (const std::string& t : layer_types) {
    if (t == "sliding_attention")
      any_sliding_layer = true;
    else if (t != "full_attention")
      k.fail("layer_types", fmt::format("holds '{}' (supported: full_attention, sliding_attention "
                                        "with a window no smaller than the context)",
                                        t));
  }
  // Mixtral has no switch: a window is in force whenever it is set. Qwen2 needs the switch.
  bool switched_on = c.arch == Arch::mixtral || k.opt_bool("use_sliding_window", false);
  if (!switched_on || !k.has("sliding_window")) return;
  int64_t window = k.req_int("sliding_window");
  if (window <= 0 || window >= c.max_position_embeddings) return;
  if (!layer_types.empty() && !any_sliding_layer) return;
  k.fail("sliding_window", fmt::format("is {}, smaller than max_position_embeddings ({}): sliding-window "
                                       "attention is not supported",
                                       window, c.max_position_embeddings));
}

void parse_moe(const JsonKeys& k, ModelConfig& c) {
  if (c.arch == Arch::mixtral) {
    c.n_experts = k.req_int_at_least("num_local_experts", 1);
    c.n_experts_per_tok = k.req_int_at_least("num_experts_per_tok", 1);
    c.moe_intermediate_size = c.intermediate_size;
    // Hugging Face's Mixtral always renormalises the top-k softmax weights.
    c.norm_topk_prob = true;
  } else if (c.arch == Arch::olmoe) {
    c.n_experts = k.req_int_at_least("num_experts", 1);
    c.n_experts_per_tok = k.req_int_at_least("num_experts_per_tok", 1);
    c.moe_intermediate_size = c.intermediate_size;
    c.norm_topk_prob = k.opt_bool("norm_topk_prob", false);
  } else if (c.arch == Arch::qwen2_moe) {
    c.n_experts = k.req_int_at_least("num_experts", 0);
    c.decoder_sparse_step = k.opt_int_at_least("decoder_sparse_step", 1, 1);
    c.mlp_only_layers = k.opt_int_list("mlp_only_layers");
    for (int64_t l : c.mlp_only_layers)
      if (l < 0 || l >= c.n_layers)
        k.fail("mlp_only_layers", fmt::format("holds layer {}, outside 0..{}", l, c.n_layers - 1));
    c.norm_topk_prob = k.opt_bool("norm_topk_prob", false);
    if (c.n_experts == 0) return;  // every layer dense, as Hugging Face builds it
    c.n_experts_per_tok = k.req_int_at_least("num_experts_per_tok", 1);
    c.moe_intermediate_size = k.req_int_at_least("moe_intermediate_size", 1);
    c.shared_expert_intermediate_size = k.req_int_at_least("shared_expert_intermediate_size", 0);
  } else {
    return;
  }
  if (c.n_experts_per_tok > c.n_experts)
    k.fail("num_experts_per_tok",
           fmt::format("is {}, more than the {} experts", c.n_experts_per_tok, c.n_experts));
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  SEMSKIP_THROW_IF_NOT_MSG(j.is_object(), "{}: a model config must be a JSON object, got {}", source,
                           j.type_name());
  JsonKeys k(j, source);
  ModelConfig c;
  c.source = source;
  c.arch = parse_arch(k);
  c.model_type = arch_name(c.arch);

  c.vocab_size = k.req_int_at_least("vocab_size", 1);
  c.hidden_size = k.req_int_at_least("hidden_size", 1);
  c.intermediate_size = k.req_int_at_least("intermediate_size", 1);
  c.n_layers = k.req_int_at_least("num_hidden_layers", 1);
  c.n_heads = k.req_int_at_least("num_attention_heads", 1);
  c.n_kv_heads = k.opt_int_at_least("num_key_value_heads", c.n_heads, 1);
  if (c.n_heads % c.n_kv_heads != 0)
    k.fail("num_key_value_heads",
           fmt::format("is {}, which does not divide num_attention_heads ({})", c.n_kv_heads, c.n_heads));
  if (k.has("head_dim")) {
    c.head_dim = k.req_int_at_least("head_dim", 1);
  } else {
    if (c.hidden_size % c.n_heads != 0)
      k.fail("hidden_size", fmt::format("is {}, not a multiple of num_attention_heads ({}), and head_dim "
                                        "is not given",
                                        c.hidden_size, c.n_heads));
    c.head_dim = c.hidden_size / c.n_heads;
  }
  // RoPE rotates pairs of dimensions.
  if (c.head_dim % 2 != 0)
    k.fail(k.has("head_dim") ? "head_dim" : "hidden_size",
           fmt::format("gives an odd head dimension ({}); rotary embeddings need an even one", c.head_dim));
  c.max_position_embeddings = k.req_int_at_least("max_position_embeddings", 1);
  c.rms_norm_eps = k.opt_number("rms_norm_eps", default_rms_norm_eps(c.arch));
  if (!(c.rms_norm_eps > 0)) k.fail("rms_norm_eps", fmt::format("must be positive, got {}", c.rms_norm_eps));

  std::string act = k.opt_string("hidden_act", "silu");
  if (act != "silu" && act != "swish")  // "swish" is Hugging Face's other name for SiLU
    k.fail("hidden_act", fmt::format("is '{}'; semskip implements SwiGLU MLPs with silu only", act));

  parse_rope(k, c);
  check_no_sliding_window(k, c);
  c.tie_word_embeddings = k.opt_bool("tie_word_embeddings", false);

  switch (c.arch) {
    case Arch::llama:
      c.attention_bias = k.opt_bool("attention_bias", false);
      c.o_proj_bias = c.attention_bias;
      c.mlp_bias = k.opt_bool("mlp_bias", false);
      break;
    case Arch::qwen2:
      c.attention_bias = true;
      break;
    case Arch::qwen2_moe:
      c.attention_bias = k.opt_bool("qkv_bias", true);
      break;
    case Arch::mixtral:
      break;
    case Arch::olmoe:
      c.attention_bias = k.opt_bool("attention_bias", false);
      c.o_proj_bias = c.attention_bias;
      c.qk_norm = true;
      // Hugging Face clamps q, k and v to ±clip_qkv when it is set; semskip does not.
      if (k.has("clip_qkv")) k.fail("clip_qkv", "is set; clipping q/k/v is not supported (null only)");
      break;
  }
  parse_moe(k, c);

  // The new layout writes "dtype", the classic one "torch_dtype".
  std::string dtype_key = k.has("dtype") ? "dtype" : "torch_dtype";
  if (k.has(dtype_key)) {
    DType d = parse_dtype(k.req_string(dtype_key), fmt::format("{}: key '{}'", source, dtype_key));
    c.torch_dtype = d == DType::bf16 ? "bfloat16" : d == DType::fp16 ? "float16" : "float32";
  }

  std::vector<int64_t> bos = k.opt_int_or_int_list("bos_token_id");
  c.eos_token_ids = k.opt_int_or_int_list("eos_token_id");
  for (int64_t id : bos)
    if (id < 0) k.fail("bos_token_id", fmt::format("holds a negative id ({})", id));
  for (int64_t id : c.eos_token_ids)
    if (id < 0) k.fail("eos_token_id", fmt::format("holds a negative id ({})", id));
  c.bos_token_id = bos.empty() ? -1 : bos.front();
  c.eos_token_id = c.eos_token_ids.empty() ? -1 : c.eos_token_ids.front();
  return c;
}

ModelConfig ModelConfig::from_file(const std::string& config_json_path) {
  // A mistyped model folder should be named as such, not as a config.json that cannot be read.
  const std::filesystem::path folder = std::filesystem::path(config_json_path).parent_path();
  std::error_code ec;
  if (!folder.empty() && !std::filesystem::is_directory(folder, ec))
    SEMSKIP_THROW_MSG("{}: no such model folder (expected a Hugging Face folder with config.json)",
                      folder.string());
  if (!std::filesystem::exists(config_json_path, ec))
    SEMSKIP_THROW_MSG("{}: no such file in the model folder {}", config_json_path,
                      folder.empty() ? "." : folder.string());
  std::string text = read_file(config_json_path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    // e.what() carries the line and column; e.byte the offset from the start of the file.
    SEMSKIP_THROW_MSG("{}: malformed JSON at byte {}: {}", config_json_path, e.byte, e.what());
  } catch (const json::exception& e) {
    // A number too large for any type is out_of_range, not a parse error.
    SEMSKIP_THROW_MSG("{}: malformed JSON: {}", config_json_path, e.what());
  }
  return from_json(j, config_json_path);
}

json ModelConfig::to_json() const {
  json j = {
      {"model_type", model_type},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", n_layers},
      {"num_attention_heads", n_heads},
      {"num_key_value_heads", n_kv_heads},
      {"head_dim", head_dim},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"hidden_act", "silu"},
      {"rope_theta", rope_theta},
      {"tie_word_embeddings", tie_word_embeddings},
      {"torch_dtype", torch_dtype},
  };
  if (rope_scaling.rope_type == "default") {
    j["rope_scaling"] = nullptr;
  } else {
    json s = {{"rope_type", rope_scaling.rope_type}, {"factor", rope_scaling.factor}};
    if (rope_scaling.rope_type == "llama3") {
      s["low_freq_factor"] = rope_scaling.low_freq_factor;
      s["high_freq_factor"] = rope_scaling.high_freq_factor;
      s["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
    }
    j["rope_scaling"] = s;
  }
  j["bos_token_id"] = bos_token_id < 0 ? json(nullptr) : json(bos_token_id);
  if (eos_token_ids.empty())
    j["eos_token_id"] = nullptr;
  else if (eos_token_ids.size() == 1)
    j["eos_token_id"] = eos_token_ids.front();
  else
    j["eos_token_id"] = eos_token_ids;

  switch (arch) {
    case Arch::llama:
      j["attention_bias"] = attention_bias;
      j["mlp_bias"] = mlp_bias;
      break;
    case Arch::qwen2:
      break;
    case Arch::qwen2_moe:
      j["qkv_bias"] = attention_bias;
      j["num_experts"] = n_experts;
      j["decoder_sparse_step"] = decoder_sparse_step;
      j["mlp_only_layers"] = mlp_only_layers;
      j["norm_topk_prob"] = norm_topk_prob;
      if (n_experts > 0) {
        j["num_experts_per_tok"] = n_experts_per_tok;
        j["moe_intermediate_size"] = moe_intermediate_size;
        j["shared_expert_intermediate_size"] = shared_expert_intermediate_size;
      }
      break;
    case Arch::mixtral:
      j["num_local_experts"] = n_experts;
      j["num_experts_per_tok"] = n_experts_per_tok;
      break;
    case Arch::olmoe:
      j["attention_bias"] = attention_bias;
      j["num_experts"] = n_experts;
      j["num_experts_per_tok"] = n_experts_per_tok;
      j["norm_topk_prob"] = norm_topk_prob;
      break;
  }
  return j;
}

double ModelConfig::weight_bytes(double bytes_per_value, int64_t n_experts_held) const {
  const double d = double(hidden_size), L = double(n_layers), hd = double(head_dim);
  const double H = double(n_heads), H_kv = double(n_kv_heads), I = double(intermediate_size);
  const double embed = double(vocab_size) * d * (tie_word_embeddings ? 1.0 : 2.0);
  double attn = d * H * hd * 2.0 + d * H_kv * hd * 2.0;
  if (attention_bias) attn += (H + 2.0 * H_kv) * hd;
  if (o_proj_bias) attn += d;
  if (qk_norm) attn += (H + H_kv) * hd;
  const double dense_mlp = 3.0 * d * I + (mlp_bias ? 2.0 * I + d : 0.0);
  const double n_moe = n_experts > 0 ? double(n_moe_layers()) : 0.0;
  const double held = n_experts_held < 0 ? double(n_experts) : double(std::min(n_experts_held, n_experts));
  double moe = held * 3.0 * d * double(expert_intermediate_size()) + d * double(n_experts);
  if (shared_expert_intermediate_size > 0) moe += 3.0 * d * double(shared_expert_intermediate_size) + d;
  const double layers = L * (attn + 2.0 * d) + (L - n_moe) * dense_mlp + n_moe * moe;
  return (embed + layers + d) * bytes_per_value;
}

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
}  // namespace

void ModelConfig::check_weights_fit(double bytes_per_value, double available_bytes, const std::string& memory_name,
                                    int64_t n_experts_held) const {
  const double need = weight_bytes(bytes_per_value, n_experts_held);
  std::string experts;
  if (n_experts > 0)
    experts = n_experts_held >= 0 && n_experts_held < n_experts
                  ? fmt::format(" with {} of {} experts held", n_experts_held, n_experts)
                  : fmt::format(" with {} experts", n_experts);
  SEMSKIP_THROW_IF_NOT_MSG(
      need <= available_bytes,
      "{}: the weights need about {:.1f} GiB at {} bytes per value (vocab_size {} × hidden_size {} embeddings, "
      "num_hidden_layers {} of intermediate_size {}{}), more than the {:.1f} GiB of {}; check these fields",
      source, need / kGiB, bytes_per_value, vocab_size, hidden_size, n_layers, intermediate_size, experts,
      available_bytes / kGiB, memory_name);
}

double ModelConfig::kv_cache_bytes(double bytes_per_value, int64_t batch, int64_t capacity) const {
  return 2.0 * double(n_layers) * double(n_kv_heads) * double(head_dim) * bytes_per_value * double(batch) *
         double(capacity);
}

void ModelConfig::check_kv_cache_fits(double bytes_per_value, int64_t batch, int64_t capacity,
                                      double available_bytes, const std::string& memory_name) const {
  const double need = kv_cache_bytes(bytes_per_value, batch, capacity);
  SEMSKIP_THROW_IF_NOT_MSG(
      need <= available_bytes,
      "{}: the KV cache of {} sequence(s) × {} positions needs about {:.1f} GiB at {} bytes per value (2 × "
      "num_hidden_layers {} × num_key_value_heads {} × head_dim {} values per position), more than the {:.1f} GiB "
      "of {}; lower the batch (--batch), the context length (the prompt + --max-new-tokens, or --max-model-len) "
      "or these config.json fields",
      source, batch, capacity, need / kGiB, bytes_per_value, n_layers, n_kv_heads, head_dim, available_bytes / kGiB,
      memory_name);
}

double ModelConfig::host_memory_bytes() {
  // Asked once: every KV cache a serving step builds is checked against it.
  static const double bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? double(pages) * double(page) : 1e300;  // unknown: no bound
  }();
  return bytes;
}

}  // namespace semskip
