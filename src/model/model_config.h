#pragma once
// ModelConfig: the shape of a model, read from a Hugging Face config.json (docs/conventions.md rule 7:
// config is plain structs split by lifetime; run-time choices live in RunConfig elsewhere).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace semskip {

enum class Arch { llama, qwen2, qwen2_moe, mixtral, olmoe };

const char* arch_name(Arch a);

// RoPE frequency scaling ("rope_scaling" in the classic layout, "rope_parameters" in the new).
struct RopeScaling {
  std::string rope_type = "default";  // "default" | "llama3" | "linear"
  double factor = 1.0;
  double low_freq_factor = 1.0;                       // llama3
  double high_freq_factor = 4.0;                      // llama3
  int64_t original_max_position_embeddings = 8192;    // llama3
};

struct ModelConfig {
  Arch arch = Arch::llama;
  std::string model_type;  // as written in config.json
  std::string source;      // path the config was read from, for error messages

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;         // d
  int64_t intermediate_size = 0;   // dense SwiGLU width (Mixtral: per-expert width)
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;            // config "head_dim" or hidden_size / n_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;     // q/k/v bias (qwen2, qwen2_moe: always; llama: attention_bias)
  bool o_proj_bias = false;        // llama attention_bias also biases o_proj
  bool mlp_bias = false;           // llama mlp_bias
  bool qk_norm = false;            // olmoe: RMSNorm over the whole q and k projections, before RoPE

  // Mixture of experts (qwen2_moe, mixtral, olmoe); n_experts == 0 for dense models.
  int64_t n_experts = 0;
  int64_t n_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;            // routed-expert width (mixtral, olmoe: = intermediate_size)
  int64_t shared_expert_intermediate_size = 0;  // qwen2_moe shared expert width (0: none)
  int64_t decoder_sparse_step = 1;              // qwen2_moe: layer l is sparse if (l+1) % step == 0
  std::vector<int64_t> mlp_only_layers;         // qwen2_moe: layers forced dense
  bool norm_topk_prob = false;                  // renormalise the top-k routing weights

  std::string torch_dtype = "float32";  // "dtype" (new layout) or "torch_dtype" (classic)
  int64_t bos_token_id = -1;            // -1: none
  int64_t eos_token_id = -1;            // the first of eos_token_ids; -1: none
  std::vector<int64_t> eos_token_ids;   // every id config.json lists (it may give a list)

  // Whether decoder layer `layer` has a MoE block (else a dense SwiGLU MLP).
  bool is_moe_layer(int64_t layer) const;
  // How many layers is_moe_layer says are MoE (computed without visiting every layer).
  int64_t n_moe_layers() const;
  // The layers is_moe_layer says are MoE, ascending (PolicyEnv::moe_layers: target=routed).
  std::vector<int64_t> moe_layers() const;
  // Width of each routed expert's SwiGLU.
  int64_t expert_intermediate_size() const;

  // Parses and validates; semskip::Error naming `source` and the offending key otherwise.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  static ModelConfig from_file(const std::string& config_json_path);

  // Bytes of the weights at `bytes_per_value` (embeddings, every layer's attention with its
  // biases, dense MLPs and MoE blocks as is_moe_layer places them, the untied head, norms), from
  // the shapes alone, in double so absurd shapes cannot wrap. `n_experts_held` routed experts of
  // each MoE layer are counted (< 0: all n_experts; an expert-parallel rank holds a slice,
  // ModelOptions::experts); routers and shared experts are always whole.
  double weight_bytes(double bytes_per_value, int64_t n_experts_held = -1) const;
  // semskip::Error naming this config.json and its size fields when the weights would not fit
  // in `available_bytes` (checked before any allocation, which would otherwise fail deep inside
  // the allocator or take minutes).
  void check_weights_fit(double bytes_per_value, double available_bytes, const std::string& memory_name,
                         int64_t n_experts_held = -1) const;
  // Bytes of a dense KV cache (model/kv_cache.h) of `batch` sequences × `capacity` positions:
  // K and V of every layer, 2 × n_layers × n_kv_heads × head_dim × bytes_per_value × batch ×
  // capacity, in double. The paged pool of serving is one sequence of its slots.
  double kv_cache_bytes(double bytes_per_value, int64_t batch, int64_t capacity) const;
  // semskip::Error naming this config.json, the batch, the context length and the KV fields
  // (num_hidden_layers, num_key_value_heads, head_dim) when such a cache would not fit in
  // `available_bytes`; called before the cache is allocated.
  void check_kv_cache_fits(double bytes_per_value, int64_t batch, int64_t capacity, double available_bytes,
                           const std::string& memory_name) const;
  // Physical memory of this host (sysconf), the bound of CPU models (model/device_memory.h).
  static double host_memory_bytes();

  // The resolved configuration in the classic Hub layout; from_json(to_json()) gives the same
  // config back. Reports store it as the model's description.
  nlohmann::json to_json() const;
};

}  // namespace semskip
