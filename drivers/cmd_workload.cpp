// semskip workload {stats, states, generate, kinds}: look at a workload before running it,
// write the hidden states a semantic cache would key on, write generated ShareGPT files, list
// the kinds and their options.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/hf_cache.h"
#include "core/error.h"
#include "core/paths.h"
#include "core/strings.h"
#include "drivers/command.h"
#include "index/npy_file.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"
#include "workloads/redundancy.h"
#include "workloads/sharegpt_writer.h"
#include "workloads/workload.h"
#include "workloads/workload_spec.h"
#include "workloads/workload_stats.h"
#include "core/timing.h"

namespace semskip {

namespace {

namespace fs = std::filesystem;

struct WorkloadStatsOptions {
  std::string spec;
  std::string tokenizer;  // empty: the model's tokenizer.json
  std::string model;      // empty: the embedded default model
  std::optional<int64_t> max_requests;
  std::optional<std::string> on_bad_line;
  std::optional<std::string> arrivals;
  std::optional<uint64_t> seed;
  double tau = 0.95;
  int64_t probe_layer = -1;  // -1: a third of the way up the stack
  int64_t redundancy_max = 1000;
  bool json = false;  // one JSON object on stdout instead of the text lines
};

struct WorkloadStatesOptions {
  std::vector<std::string> specs;  // read one after another into one file
  std::string model;      // empty: the embedded default model
  std::string out;        // .npy file
  int64_t layer = -1;     // -1: a third of the way up the stack
  int64_t max_tokens = 200000;
  std::optional<int64_t> max_requests;
  std::optional<uint64_t> seed;
};

struct WorkloadGenerateOptions {
  std::string out;
  std::string from;
  int64_t num = 1000;
  uint64_t seed = 0;
};

std::string model_type_of(const std::string& model_dir) {
  const std::string path = (fs::path(model_dir) / "config.json").string();
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    SEMSKIP_THROW_MSG("{}: invalid JSON: {}", path, e.what());
  }
  auto it = cfg.find("model_type");
  return it != cfg.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A prompt's embedding as the request-level plan cache keys it (docs/architecture.md §1): the residual
// stream after the probe layer, mean-pooled over the prompt's tokens.
class ProbeEmbedder {
 public:
  ProbeEmbedder(const std::string& model_dir, int64_t probe_layer)
      : model_(Transformer::load(model_dir, ModelOptions{})) {
    const int64_t n = model_.n_layers();
    probe_layer_ = probe_layer < 0 ? n / 3 : probe_layer;
    SEMSKIP_THROW_IF_NOT_MSG(probe_layer_ < n, "workload stats: --probe-layer {} is not below the "
                             "model's {} layers", probe_layer_, n);
  }

  int64_t probe_layer() const { return probe_layer_; }
  int64_t max_tokens() const { return model_.config().max_position_embeddings; }

  // float [d]; prompts longer than the model's context are cut to it.
  std::vector<float> operator()(const Request& r) const {
    const int64_t vocab = model_.config().vocab_size;
    const int64_t t = std::min<int64_t>(r.n_tokens_prompt(), max_tokens());
    at::Tensor ids = at::empty({1, t}, at::kLong);  // int64 [1, T]
    int64_t* p = ids.data_ptr<int64_t>();
    for (int64_t k = 0; k < t; ++k) {
      const int32_t id = r.prompt_tokens[static_cast<size_t>(k)];
      SEMSKIP_THROW_IF_NOT_MSG(id >= 0 && id < vocab,
                               "{}: token id {} is outside the model's vocabulary of {} (is the "
                               "tokenizer the model's?)",
                               r.where(), id, vocab);
      p[k] = id;
    }
    ForwardOptions fo;
    fo.stop_at_layer = probe_layer_ + 1;  // the residual after block p
    at::Tensor resid = model_.forward(ids.to(model_.device()), fo);  // [1, T, d]
    at::Tensor mean = resid.mean(1).squeeze(0).to(at::kCPU, at::kFloat).contiguous();  // [d]
    return std::vector<float>(mean.data_ptr<float>(), mean.data_ptr<float>() + mean.numel());
  }

 private:
  Transformer model_;
  int64_t probe_layer_ = 0;
};

int run_stats(const WorkloadStatsOptions& o) {
  WorkloadSpec spec = WorkloadSpec::parse(o.spec);
  spec.apply({o.max_requests, o.on_bad_line, o.arrivals, o.seed});
  const std::string model_dir = o.model.empty() ? embedded_model_dir(kDefaultModel) : resolve_model_arg(o.model);
  const std::string tok_path =
      o.tokenizer.empty() ? (fs::path(model_dir) / "tokenizer.json").string() : o.tokenizer;
  WorkloadContext ctx;
  ctx.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(tok_path));
  ctx.model_type = model_type_of(model_dir);

  if (!o.json) {
    std::printf("workload: %s\n", spec.describe().c_str());
    std::printf("tokenizer: %s\n", tok_path.c_str());
  }
  std::unique_ptr<Workload> w = Workload::open(spec, ctx);

  // The redundancy estimate embeds the first --redundancy-max requests with the model.
  std::unique_ptr<ProbeEmbedder> embedder;
  if (o.redundancy_max > 0) embedder = std::make_unique<ProbeEmbedder>(model_dir, o.probe_layer);
  std::vector<std::vector<float>> embeddings;  // [n][d]
  PromptEmbedder embed;
  if (embedder) embed = [&embedder](const Request& r) { return (*embedder)(r); };
  std::function<void(const Request&)> each;
  if (embed) {
    each = [&](const Request& r) {
      if (static_cast<int64_t>(embeddings.size()) < o.redundancy_max && r.n_tokens_prompt() > 0)
        embeddings.push_back(embed(r));
    };
  }
  WorkloadStats stats = collect_workload_stats(*w, each);
  std::optional<RedundancyEstimate> est;
  if (embedder) est = estimate_redundancy(embeddings, o.tau);
  if (o.json) {
    auto lengths = [](const LengthSummary& l) {
      return nlohmann::ordered_json{{"n", l.n},     {"mean", l.mean}, {"min", l.min}, {"p50", l.p50},
                                    {"p90", l.p90}, {"p99", l.p99},   {"max", l.max}};
    };
    nlohmann::ordered_json j = {
        {"workload", spec.describe()},
        {"tokenizer", tok_path},
        {"n_requests", stats.n_requests},
        {"n_bad_lines_skipped", stats.counters.n_bad_lines_skipped},
        {"n_filtered", stats.counters.n_filtered},
        {"prompt_tokens", lengths(stats.prompt_tokens)},
        {"output_tokens", lengths(stats.output_tokens)},
        {"reference_tokens", lengths(stats.reference_tokens)},
        {"n_with_reference", stats.n_with_reference},
        {"n_with_choices", stats.n_with_choices},
        {"n_groups", stats.n_groups},
        {"last_arrival_s", stats.last_arrival_s},
        {"load_s", stats.load_seconds},
        {"skipped_examples", stats.counters.skipped_examples},
        {"redundancy", nullptr}};
    if (est) {
      j["redundancy"] = {{"fraction", est->fraction}, {"n_redundant", est->n_redundant},
                         {"n_requests", est->n_requests}, {"tau", o.tau},
                         {"probe_layer", embedder->probe_layer()}};
    }
    std::puts(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return 0;
  }
  std::fputs(format_workload_stats(stats).c_str(), stdout);
  if (est) {
    std::printf("redundancy:        %.4f (%lld of the first %lld requests have a neighbour with "
                "cosine > %g at layer %lld)\n",
                est->fraction, static_cast<long long>(est->n_redundant),
                static_cast<long long>(est->n_requests), o.tau,
                static_cast<long long>(embedder->probe_layer()));
  }
  return 0;
}

// The keys a residual cache policy (`residual:p=<layer>`) inserts and looks up: per prompt token
// the residual stream after block `layer`, in float32, one row per token in workload order.
// Prompts longer than the model's context are cut to it; rows stop at --max-tokens. The file is
// written whole (a temporary renamed into place), for `semskip index-bench --data`.
int run_states(const WorkloadStatesOptions& o) {
  SEMSKIP_THROW_IF_NOT_MSG(o.max_tokens > 0, "workload states: --max-tokens must be positive (got {})", o.max_tokens);
  SEMSKIP_THROW_IF_NOT_MSG(!o.out.empty(), "workload states: --out is empty");
  const std::string model_dir = o.model.empty() ? embedded_model_dir(kDefaultModel) : resolve_model_arg(o.model);
  WorkloadContext ctx;
  ctx.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file((fs::path(model_dir) / "tokenizer.json").string()));
  ctx.model_type = model_type_of(model_dir);
  const Transformer model = Transformer::load(model_dir, ModelOptions{});
  const int64_t n_layers = model.n_layers();
  const int64_t layer = o.layer < 0 ? n_layers / 3 : o.layer;
  SEMSKIP_THROW_IF_NOT_MSG(layer < n_layers, "workload states: --layer {} is not below the model's {} layers ({})",
                           layer, n_layers, model_dir);
  const int64_t context = model.config().max_position_embeddings > 0 ? model.config().max_position_embeddings
                                                                      : std::numeric_limits<int64_t>::max();
  const int64_t vocab = model.config().vocab_size, dim = model.config().hidden_size;

  std::vector<float> rows;
  int64_t n_rows = 0, n_requests = 0;
  std::string described;
  std::function<void(const Request&)> each = [&](const Request& r) {
    if (n_rows >= o.max_tokens || r.n_tokens_prompt() == 0) return;
    const int64_t t = std::min({r.n_tokens_prompt(), context, o.max_tokens - n_rows});
    at::Tensor ids = at::empty({1, t}, at::kLong);  // int64 [1, T]
    int64_t* p = ids.data_ptr<int64_t>();
    for (int64_t k = 0; k < t; ++k) {
      const int32_t id = r.prompt_tokens[static_cast<size_t>(k)];
      SEMSKIP_THROW_IF_NOT_MSG(id >= 0 && id < vocab,
                               "{}: token id {} is outside the model's vocabulary of {} (is the tokenizer the model's?)",
                               r.where(), id, vocab);
      p[k] = id;
    }
    ForwardOptions fo;
    fo.stop_at_layer = layer + 1;  // the residual after block `layer`
    const at::Tensor h = model.forward(ids.to(model.device()), fo)[0].to(at::kCPU, at::kFloat).contiguous();  // [T, d]
    rows.insert(rows.end(), h.data_ptr<float>(), h.data_ptr<float>() + h.numel());
    n_rows += t;
    ++n_requests;
  };
  for (const std::string& text : o.specs) {
    WorkloadSpec spec = WorkloadSpec::parse(text);
    spec.apply({o.max_requests, std::nullopt, std::nullopt, o.seed});
    described += (described.empty() ? "" : " + ") + spec.describe();
    std::unique_ptr<Workload> w = Workload::open(spec, ctx);
    collect_workload_stats(*w, each);
  }
  SEMSKIP_THROW_IF_NOT_MSG(n_rows > 0, "workload states: {} has no prompt tokens", described);
  const std::string tmp = o.out + ".tmp";
  try {
    write_npy_matrix(tmp, n_rows, dim, rows.data());
    fs::rename(tmp, o.out);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::printf("wrote %lld states [%lld, %lld] (residual after block %lld of %s; %lld requests of %s) to %s\n",
              static_cast<long long>(n_rows), static_cast<long long>(n_rows), static_cast<long long>(dim),
              static_cast<long long>(layer), model_dir.c_str(), static_cast<long long>(n_requests),
              described.c_str(), o.out.c_str());
  return 0;
}

int run_generate(const WorkloadGenerateOptions& o) {
  const std::string from = o.from.empty() ? std::string("synthetic") : o.from;
  WorkloadSpec spec = WorkloadSpec::parse(from);
  if (o.num >= 0 && spec.kind() == "synthetic") spec.set("num", std::to_string(o.num));
  spec.set("seed", std::to_string(o.seed));
  // A ShareGPT conversation needs the answer; these kinds have one. Text is all that is
  // written, so no tokenizer is needed.
  const std::string& kind = spec.kind();
  SEMSKIP_THROW_IF_NOT_MSG(kind == "synthetic" || kind == "sharegpt" || kind == "lmsys" || kind == "jsonl",
                           "workload generate: kind '{}' has no reference answers to write as the "
                           "gpt turns (use synthetic, sharegpt, lmsys or jsonl)",
                           kind);
  const WorkloadContext ctx;
  const Stopwatch clock;
  std::unique_ptr<Workload> w = Workload::open(spec, ctx);
  const int64_t n = write_sharegpt(*w, o.out);
  const double s = clock.seconds();
  std::printf("wrote %lld conversations from %s to %s in %.2f s\n", static_cast<long long>(n),
              spec.describe().c_str(), o.out.c_str(), s);
  return 0;
}

int run_kinds() {
  auto print_options = [](const std::vector<WorkloadOption>& opts) {
    for (const WorkloadOption& opt : opts) {
      std::string dflt = opt.default_value.empty() ? "\"\"" : opt.default_value;
      std::printf("    %-14s %-12s %s\n", opt.key.c_str(), dflt.c_str(), opt.help.c_str());
    }
  };
  for (const WorkloadKind& k : workload_kinds()) {
    std::printf("%s%s\n  %s\n", k.name.c_str(), k.takes_path ? ":<path>" : "", k.summary.c_str());
    if (k.takes_path) std::printf("    default path: samples/%s\n", k.default_sample.c_str());
    print_options(k.options);
  }
  std::printf("options of every kind:\n");
  print_options(common_workload_options());
  return 0;
}

}  // namespace

void add_workload_command(CLI::App& app, CommandRegistry& reg) {
  // The nested subcommands have their own registry; `workload` runs whichever was parsed.
  auto nested = std::make_shared<CommandRegistry>();
  auto self = std::make_shared<CLI::App*>(nullptr);
  CLI::App* wl = reg.add(app, "workload", "Inspect, generate and list workloads", [nested, self]() {
    const CommandFn* fn = nested->selected(**self);
    SEMSKIP_ASSERT(fn != nullptr);  // require_subcommand(1) guarantees one
    return (*fn)();
  });
  *self = wl;
  wl->require_subcommand(1);

  auto stats = std::make_shared<WorkloadStatsOptions>();
  CLI::App* s = nested->add(*wl, "stats",
                        "Requests, token-length percentiles, skipped lines and the redundancy "
                        "estimate of a workload",
                        [stats] { return run_stats(*stats); });
  s->add_option("spec", stats->spec, "<kind>[:<path>][,key=value...] (see `semskip workload kinds`)")
      ->required();
  s->add_option("--tokenizer", stats->tokenizer, "tokenizer.json (default: the model's)");
  s->add_option("--model", stats->model,
                "model folder: its tokenizer, chat template and the embeddings of the redundancy estimate (default: the embedded model)");
  s->add_option("--max-requests", stats->max_requests, "stop after this many requests");
  s->add_option("--on-bad-line", stats->on_bad_line, "error | skip")
      ->check(CLI::IsMember({"error", "skip"}));
  s->add_option("--arrivals", stats->arrivals, "none | poisson:<rate> | trace:<field>");
  s->add_option("--seed", stats->seed, "seed of generators and arrivals");
  s->add_option("--tau", stats->tau, "similarity threshold of the redundancy estimate")
      ->capture_default_str();
  s->add_option("--probe-layer", stats->probe_layer,
                "layer whose residual embeds a prompt (-1: n_layers / 3)")
      ->capture_default_str();
  s->add_option("--redundancy-max", stats->redundancy_max,
                "embed at most this many requests (all-pairs search; 0: no estimate)")
      ->capture_default_str();
  s->add_flag("--json", stats->json, "print the statistics as one JSON object");

  auto states = std::make_shared<WorkloadStatesOptions>();
  CLI::App* st = nested->add(*wl, "states",
                             "Write the keys a residual cache would see (per prompt token, the residual "
                             "after a block) as a float32 .npy file for `semskip index-bench --data`",
                             [states] { return run_states(*states); });
  st->add_option("spec", states->specs,
                 "<kind>[:<path>][,key=value...] (see `semskip workload kinds`); several are read one after "
                 "another into one file")
      ->required();
  st->add_option("--model", states->model, "model folder (default: the embedded model)");
  st->add_option("--layer", states->layer, "block whose output is written (-1: n_layers / 3)")->capture_default_str();
  st->add_option("--out", states->out, "output .npy file")->required();
  st->add_option("--max-tokens", states->max_tokens, "stop after this many rows")->capture_default_str();
  st->add_option("--max-requests", states->max_requests, "stop after this many requests of each workload");
  st->add_option("--seed", states->seed, "seed of generators");

  auto gen = std::make_shared<WorkloadGenerateOptions>();
  CLI::App* g = nested->add(*wl, "generate", "Write a workload as a ShareGPT JSON file",
                        [gen] { return run_generate(*gen); });
  g->add_option("--out", gen->out, "output file")->required();
  g->add_option("--from", gen->from, "workload to write (default: synthetic)");
  g->add_option("--num", gen->num, "requests of the synthetic generator")->capture_default_str();
  g->add_option("--seed", gen->seed, "seed")->capture_default_str();

  nested->add(*wl, "kinds", "List the workload kinds and their options with defaults", [] { return run_kinds(); });
}

}  // namespace semskip
