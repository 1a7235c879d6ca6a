// semskip workload {stats, generate, kinds}: look at a workload before running it, write
// generated ShareGPT files, list the kinds and their options.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/paths.h"
#include "core/strings.h"
#include "drivers/command.h"
#include "tokenizer/tokenizer.h"
#include "workloads/sharegpt_writer.h"
#include "workloads/workload.h"
#include "workloads/workload_spec.h"
#include "workloads/workload_stats.h"

namespace semskip {

namespace {

namespace fs = std::filesystem;

struct StatsOptions {
  std::string spec;
  std::string tokenizer;  // empty: the model's tokenizer.json
  std::string model;      // empty: the embedded default model
  std::optional<int64_t> max_requests;
  std::optional<std::string> on_bad_line;
  std::optional<std::string> arrivals;
  std::optional<uint64_t> seed;
};

struct GenerateOptions {
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

int run_stats(const StatsOptions& o) {
  WorkloadSpec spec = WorkloadSpec::parse(o.spec);
  spec.apply({o.max_requests, o.on_bad_line, o.arrivals, o.seed});
  const std::string model_dir = o.model.empty() ? embedded_model_dir(kDefaultModel) : o.model;
  const std::string tok_path =
      o.tokenizer.empty() ? (fs::path(model_dir) / "tokenizer.json").string() : o.tokenizer;
  WorkloadContext ctx;
  ctx.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(tok_path));
  ctx.model_type = model_type_of(model_dir);

  std::printf("workload: %s\n", spec.describe().c_str());
  std::printf("tokenizer: %s\n", tok_path.c_str());
  std::unique_ptr<Workload> w = Workload::open(spec, ctx);

  WorkloadStats stats = collect_workload_stats(*w);
  std::fputs(format_workload_stats(stats).c_str(), stdout);
  return 0;
}

int run_generate(const GenerateOptions& o) {
  const std::string from = o.from.empty() ? std::string("synthetic") : o.from;
  WorkloadSpec spec = WorkloadSpec::parse(from);
  if (o.num >= 0 && spec.kind() == "synthetic") spec.set("num", std::to_string(o.num));
  spec.set("seed", std::to_string(o.seed));
  // Prompts and references are written as text; no tokenizer is needed for the synthetic
  // generator, the others get the default model's.
  WorkloadContext ctx;
  if (spec.kind() != "synthetic") {
    const std::string dir = embedded_model_dir(kDefaultModel);
    ctx.tokenizer = std::make_shared<const Tokenizer>(
        Tokenizer::from_file((fs::path(dir) / "tokenizer.json").string()));
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Workload> w = Workload::open(spec, ctx);
  const int64_t n = write_sharegpt(*w, o.out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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

  auto stats = std::make_shared<StatsOptions>();
  CLI::App* s = nested->add(*wl, "stats",
                        "Requests, token-length percentiles and skipped lines of a workload",
                        [stats] { return run_stats(*stats); });
  s->add_option("spec", stats->spec, "<kind>[:<path>][,key=value...] (see `semskip workload kinds`)")
      ->required();
  s->add_option("--tokenizer", stats->tokenizer, "tokenizer.json (default: the model's)");
  s->add_option("--model", stats->model,
                "model folder: its tokenizer and chat template (default: the embedded model)");
  s->add_option("--max-requests", stats->max_requests, "stop after this many requests");
  s->add_option("--on-bad-line", stats->on_bad_line, "error | skip")
      ->check(CLI::IsMember({"error", "skip"}));
  s->add_option("--arrivals", stats->arrivals, "none | poisson:<rate> | trace:<field>");
  s->add_option("--seed", stats->seed, "seed of generators and arrivals");

  auto gen = std::make_shared<GenerateOptions>();
  CLI::App* g = nested->add(*wl, "generate", "Write a workload as a ShareGPT JSON file",
                        [gen] { return run_generate(*gen); });
  g->add_option("--out", gen->out, "output file")->required();
  g->add_option("--from", gen->from, "workload to write (default: synthetic)");
  g->add_option("--num", gen->num, "requests of the synthetic generator")->capture_default_str();
  g->add_option("--seed", gen->seed, "seed")->capture_default_str();

  nested->add(*wl, "kinds", "List the workload kinds and their options with defaults", [] { return run_kinds(); });
}

}  // namespace semskip
