// semskip run: the Stage-1 experiment (docs/architecture.md §1, §5). One model, one workload, several
// skip policies compared on the same requests against the full model; a printed table and an
// HDF5 report. Options come from the command line or a TOML file (--config); the command
// line wins, and every resolved value is recorded in the report.
//
// Under mpirun (docs/architecture.md §4) every rank runs this command: rank 0 reads the TOML file,
// resolves and checks the configuration (against the model's config.json and the world size)
// and broadcasts it — a refusal fails every rank together; each rank evaluates its shard of
// the requests in lockstep with the others; calibration runs on rank 0 and its residual
// streams are broadcast; the results are gathered and rank 0 prints the table and writes the
// report. Without mpirun the process is a world of one and the run is the single-process one.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include <ATen/Parallel.h>
#include <toml++/toml.h>

#include "core/error.h"
#include "core/paths.h"
#include "core/strings.h"
#include "dist/cache_mode.h"
#include "dist/expert_parallel_group.h"
#include "dist/runtime.h"
#include "drivers/command.h"
#include "index/kokkos_scope.h"
#include "engine/evaluator.h"
#include "engine/run_config.h"
#include "engine/run_requests.h"
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

// The policies of a run, in report order: cache policies once per index backend.
std::vector<std::unique_ptr<SkipPolicy>> make_policies(const RunConfig& cfg, PolicyEnv env) {
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
  return policies;
}

PolicyEnv base_policy_env(const RunConfig& cfg, const ModelConfig& mc, at::Device device) {
  PolicyEnv env;
  env.n_layers = mc.n_layers;
  env.hidden = mc.hidden_size;
  env.capacity = cfg.capacity;
  env.device = device;
  env.seed = cfg.seed;
  env.sync = SyncRule::parse(cfg.sync, "--sync");
  return env;
}

// Everything decided once, on rank 0: defaults filled in, options checked against each other,
// the world size and the model's config.json, the policy descriptors and index backends built
// once. semskip::Error naming the option on a refusal.
RunConfig decide_config(RunConfig cfg, int world_size) {
  cfg.validate();
  if (cfg.policies.empty()) cfg.policies = RunConfig::default_policies();
  if (cfg.indexes.empty()) cfg.indexes = {kDefaultIndex};
  if (cfg.model.empty()) cfg.model = embedded_model_dir(kDefaultModel);
  cfg.workload = resolve_workload_spec(cfg);
  WorkloadSpec::parse(cfg.workload);
  parse_dtype(cfg.dtype, "--dtype");
  parse_device(cfg.device, "--device");
  parse_cache_mode(cfg.cache_mode, "--cache-mode");
  cfg.sync = SyncRule::parse(cfg.sync, "--sync").describe();
  parse_shard_strategy(cfg.shard);
  SEMSKIP_THROW_IF_NOT_MSG(cfg.shard_of == 0 || world_size == 1,
                           "--shard-of runs one shard in a single process; under mpirun each of the {} ranks runs "
                           "its own shard", world_size);
  const ModelConfig mc = ModelConfig::from_file(cfg.model + "/config.json");
  SEMSKIP_THROW_IF_NOT_MSG(world_size % cfg.ep == 0,
                           "--ep {} needs a multiple of {} ranks (e.g. mpirun -np {}), this run has {}", cfg.ep,
                           cfg.ep, cfg.ep, world_size);
  SEMSKIP_THROW_IF_NOT_MSG(cfg.ep == 1 || mc.n_experts > 0,
                           "--ep {}: {} has no MoE layers, there are no experts to distribute", cfg.ep, cfg.model);
  // Descriptors and index backends are checked by building the policies once, locally.
  for (const auto& p : make_policies(cfg, base_policy_env(cfg, mc, at::kCPU))) {
    SEMSKIP_THROW_IF_NOT_MSG(!p->needs_calibration() || cfg.calib_requests > 0,
                             "policy '{}' needs calibration requests (--calib-requests > 0)", p->describe());
    SEMSKIP_THROW_IF_NOT_MSG(!p->needs_full_states() || cfg.max_new_tokens == 0,
                             "policy '{}' needs the full model's states and runs in teacher-forced evaluation only "
                             "(max-new-tokens 0)", p->describe());
  }
  return cfg;
}

// Rank 0's decision on every rank (the caller's own in one process); a refusal is thrown on
// every rank.
RunConfig agree_on_config(RunConfig& cli, CLI::App* sub, const std::string& config_file, Runtime& rt) {
  auto decide = [&]() {
    if (!config_file.empty()) apply_toml(sub, config_file);  // writes into `cli` through CLI11
    return decide_config(cli, rt.world_size());
  };
  if (rt.world_size() == 1) return decide();
  nlohmann::json decided;
  if (rt.is_root()) {
    try {
      decided = {{"config", decide().to_json()}};
    } catch (const std::exception& e) {
      decided = {{"error", e.what()}};
    }
  }
  decided = rt.world().broadcast_json(decided, 0);
  if (decided.contains("error")) {
    const std::string msg = decided["error"].get<std::string>();
    if (rt.is_root()) throw Error(msg);
    SEMSKIP_THROW_MSG("rank 0 refused the configuration: {}", msg);
  }
  return RunConfig::from_json(decided["config"]);
}

// Rank 0's calibration residual streams on every rank (computed only when a policy needs them).
CalibrationSet agree_on_calibration(const Evaluator& ev, const std::vector<Request>& calib_requests,
                                    const std::vector<std::unique_ptr<SkipPolicy>>& policies, Runtime& rt) {
  if (rt.world_size() == 1) return ev.calibrate(calib_requests);
  bool needed = false;
  for (const auto& p : policies) needed = needed || p->needs_calibration();
  if (!needed) return {};
  at::Tensor states;
  if (rt.is_root()) {
    states = ev.calibrate(calib_requests).states;
    if (!states.defined()) states = at::empty({0}, at::kFloat);  // no calibration requests: nothing to send
  }
  CalibrationSet calib;
  calib.states = rt.world().broadcast(states, 0);  // fp32 [L+1, N, d]
  if (calib.states.dim() != 3) calib.states = at::Tensor();
  return calib;
}

// The GPU of every rank, "host/cuda:N" in rank order ("cuda:N" in one process); none on CPU.
// Collective: every rank runs on the same kind of device (one --device for the job).
std::vector<std::string> gpus_of_ranks(const at::Device& device, Runtime& rt) {
  if (!device.is_cuda()) return {};
  if (rt.world_size() == 1) return {device.str()};
  const at::Tensor index = rt.world().allgather(at::tensor({static_cast<int64_t>(device.index())}, at::kLong));
  std::vector<std::string> gpus;
  for (int r = 0; r < rt.world_size(); ++r)
    gpus.push_back(fmt::format("{}/cuda:{}", rt.hosts()[static_cast<size_t>(r)], index[r][0].item<int64_t>()));
  return gpus;
}

int run_experiment(RunConfig& cli, CLI::App* sub, const std::string& config_file) {
  // Before any policy exists: a kokkos: index needs Kokkos, and its views must go first.
  KokkosScope kokkos;
  Runtime& rt = Runtime::get();
  Communicator& world = rt.world();
  const bool distributed = rt.world_size() > 1;
  const RunConfig cfg = agree_on_config(cli, sub, config_file, rt);
  if (cfg.threads > 0) at::set_num_threads(static_cast<int>(cfg.threads));

  ModelOptions mo;
  mo.dtype = parse_dtype(cfg.dtype, "--dtype");
  mo.device = rt.device(parse_device(cfg.device, "--device"));
  mo.random_init = cfg.random_init;
  mo.seed = cfg.seed;
  Transformer model = Transformer::load(cfg.model, mo);
  const ModelConfig& mc = model.config();

  WorkloadContext wctx;
  wctx.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(cfg.model + "/tokenizer.json"));
  wctx.model_type = mc.model_type;
  ShardChoice shard;
  shard.strategy = parse_shard_strategy(cfg.shard);
  shard.n_shards = distributed ? rt.world_size() : std::max<int>(1, static_cast<int>(cfg.shard_of));
  shard.shard = distributed ? rt.rank() : static_cast<int>(cfg.shard_index);
  shard.seed = cfg.seed;
  const RunRequests reqs = load_run_requests(WorkloadSpec::parse(cfg.workload), wctx, cfg.calib_requests,
                                             cfg.max_requests, cfg.max_new_tokens, shard, &world);
  SEMSKIP_THROW_IF_NOT_MSG(reqs.n_evaluated_total > 0,
                           "workload '{}' has no requests left after the {} calibration requests", cfg.workload,
                           reqs.calibration.size());

  const CacheMode cache_mode = parse_cache_mode(cfg.cache_mode, "--cache-mode");
  PolicyEnv env = base_policy_env(cfg, mc, model.device());
  attach_distribution(env, cache_mode, world);
  std::vector<std::unique_ptr<SkipPolicy>> policies = make_policies(cfg, env);

  std::unique_ptr<ExpertParallelGroup> ep;
  if (cfg.ep > 1) ep = std::make_unique<ExpertParallelGroup>(world, static_cast<int>(cfg.ep), &mc);
  EvalOptions eo;
  eo.batch = cfg.batch;
  eo.max_new_tokens = cfg.max_new_tokens;
  eo.eos_token = mc.eos_token_id;
  EvalDist dist;
  dist.world = distributed ? &world : nullptr;
  dist.ep = ep ? &ep->executor() : nullptr;
  dist.counted = {&world};
  if (ep) dist.counted.push_back(&ep->comm());
  Evaluator ev(model, eo, dist);
  if (rt.is_root()) {
    std::fprintf(stderr, "semskip run: %s, %lld requests (+%zu calibration), %zu policies", cfg.model.c_str(),
                 static_cast<long long>(reqs.n_evaluated_total), reqs.calibration.size(), policies.size());
    if (distributed || shard.n_shards > 1)
      std::fprintf(stderr, ", shard %d of %d (%s)", shard.shard, shard.n_shards, cfg.shard.c_str());
    if (distributed)
      std::fprintf(stderr, ", %d ranks on %d hosts, cache %s, sync %s", rt.world_size(), rt.n_nodes(),
                   cfg.cache_mode.c_str(), cfg.sync.c_str());
    if (ep) std::fprintf(stderr, ", %s", ep->describe(mc.n_experts).c_str());
    std::fputc('\n', stderr);
  }
  const CalibrationSet calib = agree_on_calibration(ev, reqs.calibration, policies, rt);
  const std::vector<PolicyResult> results = ev.run(reqs.evaluated, policies, calib);
  const std::vector<GatheredResult> gathered = gather_results(results, distributed ? &world : nullptr);
  const std::vector<std::string> gpus = gpus_of_ranks(model.device(), rt);
  if (!rt.is_root()) return 0;

  std::vector<PolicySummary> summaries;
  for (const GatheredResult& r : gathered)
    summaries.push_back(summarize(r, static_cast<int>(cfg.bootstrap), cfg.seed, cache_mode == CacheMode::replicated));
  std::fputs(format_summary_text(summaries).c_str(), stdout);

  if (!cfg.report.empty()) {
    report::ReportWriter writer(std::filesystem::absolute(cfg.report).string());
    report::RunInfo info = report::collect_run_info();
    info.config_json = cfg.to_json().dump();
    info.world_size = rt.world_size();
    info.hosts = rt.hosts();
    info.gpus = gpus;
    report::write_run_info(writer, info);
    writer.set_attr("command", std::string("run"));
    writer.set_attr("model_type", mc.model_type);
    writer.set_attr("workload", cfg.workload);
    writer.set_attr("workload_bad_lines_skipped", reqs.counters.n_bad_lines_skipped);
    writer.set_attr("cache_mode", cfg.cache_mode);
    writer.set_attr("sync", cfg.sync);
    writer.set_attr("ep_size", cfg.ep);
    writer.set_attr("shard", cfg.shard);
    writer.write_table("/summary", summary_table(summaries));
    writer.write_table("/per_layer", per_layer_table(gathered));
    writer.write_table("/per_rank", per_rank_table(gathered, rt.hosts()));
    writer.write_table("/requests", requests_table(gathered));
    writer.write_table("/steps", steps_table(gathered));
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
                          [cfg, config_file, sub_ptr]() { return run_experiment(*cfg, *sub_ptr, *config_file); });
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
  sub->add_option("--cache-mode", cfg->cache_mode,
                  "semantic cache over the ranks: local (each rank its own) | replicated (every rank all "
                  "entries) | sharded (1/n of the entries each)")->capture_default_str();
  sub->add_option("--sync", cfg->sync,
                  "when cache hits are applied: token (each its own) | batch:<f> (a micro-batch's hits iff ≥ f "
                  "of its lookups hit) | global[:<f>] (all ranks or none, on the job's hits; f 0.5)")
      ->capture_default_str();
  sub->add_option("--ep", cfg->ep,
                  "expert-parallel group size: MoE experts split over groups of this many consecutive ranks")
      ->capture_default_str();
  sub->add_option("--shard", cfg->shard, "how requests are split over ranks: round-robin | contiguous | balanced")
      ->capture_default_str();
  sub->add_option("--shard-of", cfg->shard_of,
                  "single process: run one shard of this many, as that rank of an mpirun would (0: all)")
      ->capture_default_str();
  sub->add_option("--shard-index", cfg->shard_index, "the shard --shard-of runs")->capture_default_str();
}

}  // namespace semskip
