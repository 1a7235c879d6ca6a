// semskip run: the Stage-1 experiment (DESIGN.md §1, §5). One model, one workload, several
// skip policies compared on the same requests against the full model; a printed table and an
// HDF5 report. Options come from the command line or a TOML file (--config); the command
// line wins, and every resolved value is recorded in the report.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include <ATen/Parallel.h>
#include <toml++/toml.h>

#include "core/error.h"
#include "core/paths.h"
#include "core/strings.h"
#include "drivers/command.h"
#include "engine/evaluator.h"
#include "engine/run_config.h"
#include "engine/run_summary.h"
#include "model/transformer.h"
#include "reports/report_writer.h"
#include "reports/run_info.h"
#include "skip/descriptor.h"
#include "tokenizer/tokenizer.h"
#include "workloads/workload.h"

namespace semskip {

namespace {

constexpr const char* kDefaultIndex = "torch:flat";

std::string toml_scalar(const toml::node& n, const std::string& file, const std::string& key) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto f = n.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  SEMSKIP_THROW_MSG("{}: key '{}' must be a string, number or boolean (or an array of them)", file, key);
}

// Values of the TOML file for every option not given on the command line.
void apply_toml(CLI::App* sub, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    SEMSKIP_THROW_MSG("{}:{}:{}: {}", file, e.source().begin.line, e.source().begin.column, e.description());
  }
  for (const auto& [k, node] : root) {
    const std::string key(k.str());
    CLI::Option* opt = sub->get_option_no_throw("--" + key);
    SEMSKIP_THROW_IF_NOT_MSG(opt != nullptr && key != "config",
                             "{}: unknown key '{}' (keys are the long options of `semskip run`, without --)",
                             file, key);
    if (opt->count() > 0) continue;  // the command line wins
    std::vector<std::string> values;
    if (const toml::array* arr = node.as_array()) {
      SEMSKIP_THROW_IF_NOT_MSG(opt->get_items_expected_max() > 1, "{}: key '{}' takes one value, not an array", file,
                               key);
      for (const toml::node& item : *arr) values.push_back(toml_scalar(item, file, key));
    } else {
      values.push_back(toml_scalar(node, file, key));
    }
    for (const std::string& v : values) opt->add_result(v);
    try {
      opt->run_callback();
    } catch (const CLI::Error& e) {
      SEMSKIP_THROW_MSG("{}: key '{}': {}", file, key, e.what());
    }
  }
}

std::string resolve_workload_spec(const RunConfig& cfg) {
  std::string spec = cfg.workload.empty() ? "text" : cfg.workload;
  const std::string kind = spec.substr(0, spec.find_first_of(":,"));
  if (kind == "text" && spec.find("chunk=") == std::string::npos) spec += ",chunk=" + std::to_string(cfg.chunk);
  return spec;
}

int run_experiment(const RunConfig& cfg_in) {
  RunConfig cfg = cfg_in;
  cfg.validate();
  if (cfg.policies.empty()) cfg.policies = RunConfig::default_policies();
  if (cfg.indexes.empty()) cfg.indexes = {kDefaultIndex};
  if (cfg.threads > 0) at::set_num_threads(static_cast<int>(cfg.threads));

  ModelOptions mo;
  mo.dtype = parse_dtype(cfg.dtype, "--dtype");
  mo.device = parse_device(cfg.device, "--device");
  mo.random_init = cfg.random_init;
  mo.seed = cfg.seed;
  const std::string model_dir = cfg.model.empty() ? embedded_model_dir(kDefaultModel) : cfg.model;
  cfg.model = model_dir;
  Transformer model = Transformer::load(model_dir, mo);
  const ModelConfig& mc = model.config();

  WorkloadContext wctx;
  wctx.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(model_dir + "/tokenizer.json"));
  wctx.model_type = mc.model_type;
  cfg.workload = resolve_workload_spec(cfg);
  std::unique_ptr<Workload> w = Workload::open(WorkloadSpec::parse(cfg.workload), wctx);
  std::vector<Request> calib_requests, requests;
  while (static_cast<int64_t>(calib_requests.size()) < cfg.calib_requests) {
    std::optional<Request> r = w->next();
    if (!r) break;
    calib_requests.push_back(std::move(*r));
  }
  while (cfg.max_requests == 0 || static_cast<int64_t>(requests.size()) < cfg.max_requests) {
    std::optional<Request> r = w->next();
    if (!r) break;
    requests.push_back(std::move(*r));
  }
  SEMSKIP_THROW_IF_NOT_MSG(!requests.empty(), "workload '{}' has no requests left after the {} calibration requests",
                           cfg.workload, calib_requests.size());

  PolicyEnv env;
  env.n_layers = mc.n_layers;
  env.hidden = mc.hidden_size;
  env.capacity = cfg.capacity;
  env.device = model.device();
  env.seed = cfg.seed;
  std::vector<std::unique_ptr<SkipPolicy>> policies;
  for (const std::string& desc : cfg.policies) {
    const std::string name = Descriptor::parse(desc).name();
    if (name == "residual" || name == "plan") {
      for (const std::string& idx : cfg.indexes) {
        env.index_descriptor = idx;
        policies.push_back(make_policy(desc, env));
      }
    } else {
      policies.push_back(make_policy(desc, env));
    }
  }

  EvalOptions eo;
  eo.batch = cfg.batch;
  eo.max_new_tokens = cfg.max_new_tokens;
  eo.eos_token = mc.eos_token_id;
  Evaluator ev(model, eo);
  std::fprintf(stderr, "semskip run: %s, %zu requests (+%zu calibration), %zu policies\n", model_dir.c_str(),
               requests.size(), calib_requests.size(), policies.size());
  const CalibrationSet calib = ev.calibrate(calib_requests);
  const std::vector<PolicyResult> results = ev.run(requests, policies, calib);

  std::vector<PolicySummary> summaries;
  for (const PolicyResult& r : results) summaries.push_back(summarize(r, static_cast<int>(cfg.bootstrap), cfg.seed));
  std::fputs(format_summary_text(summaries).c_str(), stdout);

  if (!cfg.report.empty()) {
    report::ReportWriter writer(std::filesystem::absolute(cfg.report).string());
    report::RunInfo info = report::collect_run_info();
    info.config_json = cfg.to_json().dump();
    if (model.device().is_cuda()) info.gpus = {model.device().str()};
    report::write_run_info(writer, info);
    writer.set_attr("command", std::string("run"));
    writer.set_attr("model_type", mc.model_type);
    writer.set_attr("workload", cfg.workload);
    writer.set_attr("workload_bad_lines_skipped", w->counters().n_bad_lines_skipped);
    writer.write_table("/summary", summary_table(summaries));
    writer.write_table("/per_layer", per_layer_table(results));
    writer.write_table("/requests", requests_table(results));
    writer.write_table("/steps", steps_table(results));
    writer.commit();
    std::fprintf(stderr, "semskip run: report written to %s\n", cfg.report.c_str());
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, CommandRegistry& reg) {
  auto cfg = std::make_shared<RunConfig>();
  auto config_file = std::make_shared<std::string>();
  auto sub_ptr = std::make_shared<CLI::App*>(nullptr);
  CLI::App* sub = reg.add(app, "run",
                          "Compare skip policies against the full model on one workload: FLOPs saved, "
                          "accuracy lost (Stage-1 experiment)",
                          [cfg, config_file, sub_ptr]() {
                            if (!config_file->empty()) apply_toml(*sub_ptr, *config_file);
                            return run_experiment(*cfg);
                          });
  *sub_ptr = sub;
  sub->add_option("--config", *config_file, "TOML file with any of these options (keys without --)");
  sub->add_option("--model", cfg->model, "Hugging Face model folder (default: the embedded tiny-dense)");
  sub->add_flag("--random-init", cfg->random_init, "random weights of the config's shape");
  sub->add_option("--dtype", cfg->dtype, "compute dtype: fp32 | bf16 | fp16")->capture_default_str();
  sub->add_option("--device", cfg->device, "cpu | cuda | cuda:N")->capture_default_str();
  sub->add_option("--workload", cfg->workload,
                  "workload spec (default: text, the shipped held-out sample); see `semskip workload kinds`");
  sub->add_option("--chunk", cfg->chunk, "tokens per teacher-forced chunk of text workloads")->capture_default_str();
  sub->add_option("--max-requests", cfg->max_requests, "requests evaluated (0: all)")->capture_default_str();
  sub->add_option("--calib-requests", cfg->calib_requests,
                  "leading requests used only to calibrate (static:k, PCA keys)")->capture_default_str();
  sub->add_option("--batch", cfg->batch, "sequences per micro-batch step")->capture_default_str();
  sub->add_option("--max-new-tokens", cfg->max_new_tokens,
                  "greedy tokens generated per request and compared (0: teacher-forced only)")->capture_default_str();
  sub->add_option("--policy", cfg->policies,
                  "skip policy descriptor, repeatable (default: " + join(RunConfig::default_policies(), " ") + ")");
  sub->add_option("--index", cfg->indexes,
                  std::string("index descriptor of cache policies, repeatable (default: ") + kDefaultIndex + ")");
  sub->add_option("--capacity", cfg->capacity, "cache capacity in entries (policy key cap= overrides)")
      ->capture_default_str();
  sub->add_option("--bootstrap", cfg->bootstrap, "bootstrap resamples for 95% intervals")->capture_default_str();
  sub->add_option("--seed", cfg->seed, "seed of random policies, projections and bootstrap")->capture_default_str();
  sub->add_option("--threads", cfg->threads, "CPU threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  sub->add_option("--report", cfg->report, "HDF5 report path ('' for none)")->capture_default_str();
}

}  // namespace semskip
