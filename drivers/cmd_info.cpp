// semskip info: what a model is — architecture, parameters (total and active per token), the
// memory of its weights and KV cache by dtype, and FLOPs per token per layer at a context; with
// --ep, the weight memory per rank of expert-parallel groups (routed experts split, the rest
// replicated).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/hf_cache.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/paths.h"
#include "comm/expert_partition.h"
#include "drivers/command.h"
#include "metrics/flop_formulas.h"
#include "model/layer_dims.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "model/transformer.h"

namespace semskip {

namespace {

using nlohmann::json;

struct InfoOptions {
  std::string model;  // empty: the embedded default
  bool random_init = false;
  int64_t context = 128;
  bool json = false;
  bool check_weights = false;
  std::vector<int64_t> ep;  // --ep: expert-parallel group sizes whose per-rank weight memory is printed
};

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

// Per-rank weight memory with the routed experts split over `n` ranks (comm/expert_partition.h:
// contiguous ranges, the first ranks one more when uneven) and everything else replicated:
// one entry per run of ranks that hold the same number of experts. `expert_params[l]`: the
// parameters of one routed expert of layer l (0 for a dense layer).
json ep_memory(int64_t n, int64_t n_experts, const std::vector<int64_t>& expert_params, int64_t params_replicated) {
  SEMSKIP_THROW_IF_NOT_MSG(n >= 1, "option --ep: group sizes must be >= 1, got {}", n);
  const ExpertPartition part(n_experts, static_cast<int>(n));
  int64_t per_expert_all_layers = 0;
  for (int64_t p : expert_params) per_expert_all_layers += p;
  json ranks = json::array();
  for (int r = 0; r < n;) {
    int last = r;
    while (last + 1 < n && part.count(last + 1) == part.count(r)) ++last;
    const int64_t routed = part.count(r) * per_expert_all_layers, params = params_replicated + routed;
    json bytes = json::object();
    for (DType d : {DType::fp32, DType::bf16, DType::fp16}) bytes[dtype_name(d)] = params * int64_t(dtype_size(d));
    ranks.push_back({{"first_rank", r}, {"last_rank", last}, {"experts_per_moe_layer", part.count(r)},
                     {"params_routed", routed}, {"params", params}, {"bytes", bytes}});
    r = last + 1;
  }
  return {{"ep", n}, {"params_replicated", params_replicated}, {"ranks", ranks}};
}

json info_json(const InfoOptions& o) {
  const std::string dir = o.model.empty() ? embedded_model_dir(kDefaultModel) : resolve_model_arg(o.model);
  const ModelConfig c = ModelConfig::from_file((std::filesystem::path(dir) / "config.json").string());
  SEMSKIP_THROW_IF_NOT_MSG(o.context >= 1, "option --context: must be >= 1, got {}", o.context);
  SEMSKIP_THROW_IF_NOT_MSG(!(o.check_weights && o.random_init),
                           "option --check-weights reads the checkpoint; it cannot go with --random-init");
  // Built on the meta device: every parameter's shape, no memory, no weights needed.
  MetaWeights meta(at::kFloat);
  ModelOptions mo;
  const Transformer t = Transformer::build(c, meta, mo);

  json j;
  j["model"] = dir;
  j["architecture"] = arch_name(c.arch);
  j["n_layers"] = c.n_layers;
  j["hidden_size"] = c.hidden_size;
  j["n_heads"] = c.n_heads;
  j["n_kv_heads"] = c.n_kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["intermediate_size"] = c.intermediate_size;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rope_theta"] = c.rope_theta;
  j["rope_type"] = c.rope_scaling.rope_type;
  j["dtype_on_disk"] = c.torch_dtype;
  if (c.n_experts > 0) {
    j["n_experts"] = c.n_experts;
    j["n_experts_per_tok"] = c.n_experts_per_tok;
    j["expert_intermediate_size"] = c.expert_intermediate_size();
    j["shared_expert_intermediate_size"] = c.shared_expert_intermediate_size;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["n_moe_layers"] = c.n_moe_layers();
  }
  j["params_total"] = t.n_params();
  j["params_active_per_token"] = t.n_params_active();
  if (!o.ep.empty()) {
    SEMSKIP_THROW_IF_NOT_MSG(c.n_experts > 0, "option --ep: {} has no MoE layers; every weight is replicated on "
                             "every rank", dir);
    std::vector<int64_t> expert_params;  // one routed expert of each layer
    int64_t routed = 0;
    for (int64_t l = 0; l < c.n_layers; ++l) {
      const auto& moe = t.layer(l).moe;
      expert_params.push_back(moe ? moe->experts.front().n_params() : 0);
      if (moe) for (const SwiGluMlp& e : moe->experts) routed += e.n_params();
    }
    json ep = json::array();
    for (int64_t n : o.ep) ep.push_back(ep_memory(n, c.n_experts, expert_params, t.n_params() - routed));
    j["ep_memory"] = ep;
  }
  if (!o.random_init) {
    // The checkpoint must hold exactly what the architecture names (its tied head excepted).
    const Checkpoint ckpt(dir);
    int64_t n = 0;
    for (const std::string& name : ckpt.names()) {
      if (c.tie_word_embeddings && name == "lm_head.weight") continue;
      int64_t numel = 1;
      for (int64_t extent : ckpt.file_of(name).view(name).shape) numel *= extent;
      n += numel;
    }
    j["params_in_checkpoint"] = n;
    if (o.check_weights) {
      // Every tensor read once; the names of those with NaN or inf, which would otherwise run
      // to the end of a benchmark as perfect agreement.
      json bad = json::array();
      for (const NonFiniteTensor& t : non_finite_tensors(ckpt))
        bad.push_back({{"name", t.name}, {"n_nan", t.n_nan}, {"n_inf", t.n_inf}, {"numel", t.numel}});
      j["non_finite_weights"] = bad;
    }
  }
  json mem = json::object(), kv = json::object();
  for (DType d : {DType::fp32, DType::bf16, DType::fp16}) {
    mem[dtype_name(d)] = t.n_params() * static_cast<int64_t>(dtype_size(d));
    kv[dtype_name(d)] = 2 * c.n_layers * c.n_kv_heads * c.head_dim * static_cast<int64_t>(dtype_size(d));
  }
  j["weights_bytes"] = mem;
  j["kv_cache_bytes_per_token"] = kv;

  json layers = json::array();
  int64_t total = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const flops::LayerTokenFlops f = flops::layer_token_flops(layer_dims(c, l), o.context);
    layers.push_back({{"layer", l}, {"moe", c.is_moe_layer(l)}, {"attn_proj", f.attn_proj},
                      {"attn_products", f.attn_products}, {"mlp", f.mlp}, {"router", f.router},
                      {"experts", f.experts}, {"shared_expert", f.shared_expert}, {"total", f.total()}});
    total += f.total();
  }
  const int64_t rotary = flops::rotary(c.head_dim, 1);
  const int64_t head = lm_head_token_flops(c);
  j["flops_per_token"] = {{"context", o.context}, {"layers", layers}, {"rotary", rotary}, {"lm_head", head},
                          {"total", total + rotary + head}};
  return j;
}

void print_text(const json& j) {
  std::printf("model        %s\n", j["model"].get<std::string>().c_str());
  std::printf("architecture %s: %lld layers, d %lld, %lld heads / %lld KV heads of %lld, vocabulary %lld%s\n",
              j["architecture"].get<std::string>().c_str(), (long long)j["n_layers"], (long long)j["hidden_size"],
              (long long)j["n_heads"], (long long)j["n_kv_heads"], (long long)j["head_dim"],
              (long long)j["vocab_size"], j["tie_word_embeddings"].get<bool>() ? ", tied embeddings" : "");
  if (j.contains("n_experts")) {
    std::printf("experts      %lld of %lld MoE layers: %lld experts of width %lld, top-%lld%s\n",
                (long long)j["n_moe_layers"], (long long)j["n_layers"], (long long)j["n_experts"],
                (long long)j["expert_intermediate_size"], (long long)j["n_experts_per_tok"],
                j["shared_expert_intermediate_size"].get<int64_t>() > 0
                    ? fmt::format(", shared expert of width {}", j["shared_expert_intermediate_size"].get<int64_t>()).c_str()
                    : "");
  } else {
    std::printf("mlp          SwiGLU of width %lld\n", (long long)j["intermediate_size"]);
  }
  std::printf("rope         theta %g, %s scaling; context up to %lld\n", j["rope_theta"].get<double>(),
              j["rope_type"].get<std::string>().c_str(), (long long)j["max_position_embeddings"]);
  std::printf("parameters   %lld total, %lld active per token", (long long)j["params_total"],
              (long long)j["params_active_per_token"]);
  if (j.contains("params_in_checkpoint")) std::printf(" (checkpoint: %lld)", (long long)j["params_in_checkpoint"]);
  std::printf("\nweights      ");
  for (const char* d : {"fp32", "bf16", "fp16"}) std::printf("%s %s  ", d, human_bytes(j["weights_bytes"][d].get<double>()).c_str());
  std::printf("(on disk: %s)\nKV cache     per token: ", j["dtype_on_disk"].get<std::string>().c_str());
  for (const char* d : {"fp32", "bf16", "fp16"}) std::printf("%s %s  ", d, human_bytes(j["kv_cache_bytes_per_token"][d].get<double>()).c_str());
  if (j.contains("non_finite_weights")) {
    const json& bad = j["non_finite_weights"];
    if (bad.empty()) std::printf("\nweights      all finite (checked every tensor)");
    for (const json& t : bad)
      std::printf("\nNON-FINITE   %s: %lld NaN, %lld inf of %lld values", t["name"].get<std::string>().c_str(),
                  (long long)t["n_nan"], (long long)t["n_inf"], (long long)t["numel"]);
  }
  if (j.contains("ep_memory")) {
    std::printf("\n\nWeights per rank with the routed experts split over the ranks of an expert-parallel group "
                "(--ep),\neverything else replicated (%lld parameters):\n",
                (long long)j["ep_memory"][0]["params_replicated"]);
    std::printf("%4s %7s %13s %14s %11s %11s %11s\n", "ep", "ranks", "experts/layer", "params/rank", "fp32", "bf16",
                "fp16");
    for (const json& e : j["ep_memory"]) {
      for (const json& r : e["ranks"]) {
        const std::string ranks = r["first_rank"] == r["last_rank"]
                                      ? fmt::format("{}", r["first_rank"].get<int64_t>())
                                      : fmt::format("{}-{}", r["first_rank"].get<int64_t>(), r["last_rank"].get<int64_t>());
        std::printf("%4lld %7s %13lld %14lld %11s %11s %11s\n", (long long)e["ep"], ranks.c_str(),
                    (long long)r["experts_per_moe_layer"], (long long)r["params"],
                    human_bytes(r["bytes"]["fp32"].get<double>()).c_str(),
                    human_bytes(r["bytes"]["bf16"].get<double>()).c_str(),
                    human_bytes(r["bytes"]["fp16"].get<double>()).c_str());
      }
    }
  }
  const json& f = j["flops_per_token"];
  std::printf("\n\nFLOPs per token attending to %lld keys (matmuls, 2·m·n·k):\n", (long long)f["context"]);
  std::printf("%5s %12s %13s %12s %10s %12s %13s %12s\n", "layer", "attn_proj", "attn_products", "mlp", "router",
              "experts", "shared_expert", "total");
  for (const json& l : f["layers"]) {
    std::printf("%5lld %12lld %13lld %12lld %10lld %12lld %13lld %12lld\n", (long long)l["layer"],
                (long long)l["attn_proj"], (long long)l["attn_products"], (long long)l["mlp"], (long long)l["router"],
                (long long)l["experts"], (long long)l["shared_expert"], (long long)l["total"]);
  }
  std::printf("rotary %lld, lm_head %lld; total %lld FLOPs per token (%.3f GFLOP)\n", (long long)f["rotary"],
              (long long)f["lm_head"], (long long)f["total"], f["total"].get<double>() / 1e9);
}

}  // namespace

void add_info_command(CLI::App& app, CommandRegistry& reg) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* sub = reg.add(app, "info", "Architecture, parameters, memory and FLOPs per token of a model", [o] {
    const json j = info_json(*o);
    if (o->json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      print_text(j);
    }
    // Non-finite weights are a failed check: the exit status says so to scripts.
    if (j.contains("non_finite_weights") && !j["non_finite_weights"].empty()) {
      std::fprintf(stderr, "semskip info: error: %s: %zu tensor(s) hold non-finite weights\n",
                   j["model"].get<std::string>().c_str(), j["non_finite_weights"].size());
      return 1;
    }
    return 0;
  });
  sub->add_option("--model", o->model, "Hugging Face model folder (default: the embedded tiny-dense)");
  sub->add_flag("--random-init", o->random_init, "Describe the config alone; do not read the checkpoint");
  sub->add_option("--context", o->context, "Keys each token attends to in the FLOPs table")->capture_default_str();
  sub->add_flag("--json", o->json, "Print one JSON object");
  sub->add_flag("--check-weights", o->check_weights,
                "Read every weight and name the tensors holding NaN or inf (exit status 1 if any)");
  sub->add_option("--ep", o->ep,
                  "Also print the weight memory per rank with the routed experts split over expert-parallel "
                  "groups of these sizes (a list: --ep 1,2,4,8), from config.json alone")
      ->delimiter(',');
}

}  // namespace semskip
