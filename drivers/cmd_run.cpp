// semskip run: the Stage-1 experiment (docs/architecture.md §1, §5). One model, one workload, several
// skip policies compared on the same requests against the full model; a printed table and an
// HDF5 report. Options come from the command line, a TOML file (--config) or an earlier
// report (--config-from, its config_json); the command line wins over --config, which wins over
// --config-from. The run is decided once into a RunPlan (engine/run_config.h) and recorded in
// the report in the keys a TOML file uses.
//
// Under mpirun (docs/architecture.md §4) every rank runs this command: rank 0 reads the TOML file,
// resolves and checks the configuration (against the model's config.json and the world size)
// and broadcasts it — a refusal fails every rank together; each rank evaluates its shard of
// the requests in lockstep with the others; calibration runs on rank 0 and its residual
// streams are broadcast; the results are gathered and rank 0 prints the table and writes the
// report. Without mpirun the process is a world of one and the run is the single-process one.
//
// Interruption (core/signals.h): SIGTERM, SIGINT or SIGUSR1 finishes the step in flight; the
// ranks agree to stop at that step boundary, every rank saves its state beside the report and
// rank 0 writes the report of the completed steps with status "partial"; the exit status is
// kExitInterrupted (75). `--resume <report>` rebuilds the same configuration from the report,
// restores the saved state (engine/run_checkpoint.h) and continues at the next step, so the
// final report equals the uninterrupted run's. With --report the same is saved every
// --checkpoint-every steps, so a run killed outright loses at most that many steps.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <type_traits>

#include <ATen/Parallel.h>
#include <toml++/toml.h>

#include "core/error.h"
#include "core/paths.h"
#include "core/progress.h"
#include "core/signals.h"
#include "core/strings.h"
#include "core/toml_text.h"
#include "parallel_cache/cache_mode.h"
#include "comm/expert_parallel_group.h"
#include "comm/nccl_communicator.h"
#include "comm/runtime.h"
#include "drivers/command.h"
#include "index/kokkos_scope.h"
#include "engine/evaluator.h"
#include "engine/run_config.h"
#include "engine/run_gather.h"
#include "drivers/report_flags.h"
#include "engine/run_checkpoint.h"
#include "engine/run_requests.h"
#include "engine/run_summary.h"
#include "engine/sweep.h"
#include "model/transformer.h"
#include "reports/report_reader.h"
#include "reports/report_writer.h"
#include "reports/run_info.h"
#include "reports/slurm_info.h"
#include "skip/descriptor.h"
#include "skip/local_cache.h"
#include "tokenizer/tokenizer.h"
#include "workloads/workload.h"

namespace semskip {

namespace {

// Steps between checkpoints of a run with a report (--checkpoint-every).
constexpr int64_t kDefaultCheckpointEvery = 16;

// Sets every option in `values` (key → texts) not given on the command line nor by an earlier
// source; `source` names the file in messages.
void apply_values(CLI::App* sub, const std::string& source,
                  const std::vector<std::pair<std::string, std::vector<std::string>>>& values) {
  for (const auto& [key, texts] : values) {
    const RunOptionInfo* info = find_run_option(key);
    SEMSKIP_THROW_IF_NOT_MSG(info != nullptr,
                             "{}: unknown key '{}' (keys are the long options of `semskip run`, without --)",
                             source, key);
    CLI::Option* opt = sub->get_option(info->flag);
    if (opt->count() > 0) continue;  // the command line (or a source applied before) wins
    SEMSKIP_THROW_IF_NOT_MSG(texts.size() <= 1 || info->is_list, "{}: key '{}' takes one value, not an array",
                             source, key);
    for (const std::string& v : texts) opt->add_result(v);
    try {
      opt->run_callback();
    } catch (const CLI::Error& e) {
      SEMSKIP_THROW_MSG("{}: key '{}': {}", source, key, e.what());
    }
  }
}

std::string toml_scalar(const toml::node& n, const std::string& file, const std::string& key) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto f = n.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  SEMSKIP_THROW_MSG("{}: key '{}' must be a string, number or boolean (or an array of them)", file, key);
}

// Values of the TOML file for every option not given on the command line.
void apply_toml(CLI::App* sub, const std::string& file) {
  check_toml_text(read_file(file), file);  // before toml++, which has undefined behaviour on some such text
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    SEMSKIP_THROW_MSG("{}:{}:{}: {}", file, e.source().begin.line, e.source().begin.column, e.description());
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> values;
  for (const auto& [k, node] : root) {
    const std::string key(k.str());
    std::vector<std::string> texts;
    if (const toml::array* arr = node.as_array()) {
      for (const toml::node& item : *arr) texts.push_back(toml_scalar(item, file, key));
      const RunOptionInfo* info = find_run_option(key);
      SEMSKIP_THROW_IF_NOT_MSG(info == nullptr || info->is_list, "{}: key '{}' takes one value, not an array",
                               file, key);
    } else {
      texts.push_back(toml_scalar(node, file, key));
    }
    values.emplace_back(key, texts);
  }
  apply_values(sub, file, values);
}

// The resolved configuration an earlier `semskip run` recorded in its report (config_json), for
// every option given neither on the command line nor by --config.
void apply_report_config(CLI::App* sub, const std::string& path) {
  report::ReportReader reader(path);
  SEMSKIP_THROW_IF_NOT_MSG(reader.has_attr("config_json"), "{}: no config_json attribute (not a report of "
                           "`semskip run`?)", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(report::attr_to_string(reader.attr("config_json")));
  } catch (const nlohmann::json::exception& e) {
    SEMSKIP_THROW_MSG("{}: config_json is not JSON: {}", path, e.what());
  }
  auto text = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  std::vector<std::pair<std::string, std::vector<std::string>>> values;
  for (const auto& [key, v] : j.items()) {
    std::vector<std::string> texts;
    if (v.is_array()) {
      for (const auto& item : v) texts.push_back(text(item));
    } else {
      texts.push_back(text(v));
    }
    values.emplace_back(key, texts);
  }
  apply_values(sub, path + " (config_json)", values);
}

// In a SLURM job array, a task that runs one shard (--shard-of on the command line or in --config)
// and names none runs the shard of its task id (slurm/sweep.sbatch).
void apply_slurm_array_shard(CLI::App* sub, int64_t shard_of) {
  const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
  if (shard_of <= 0 || task == nullptr || *task == '\0') return;
  apply_values(sub, "$SLURM_ARRAY_TASK_ID", {{"shard_index", {std::string(task)}}});
}

// The policies of a run, in report order: cache policies once per index backend.
std::vector<std::unique_ptr<SkipPolicy>> make_policies(const RunPlan& plan, PolicyEnv env) {
  std::vector<std::unique_ptr<SkipPolicy>> policies;
  for (const Descriptor& desc : plan.policies) {
    if (desc.name() == "residual" || desc.name() == "cascade" || desc.name() == "plan") {
      for (const std::string& idx : plan.indexes) {
        env.index_descriptor = idx;
        policies.push_back(make_policy(desc.text(), env));
      }
    } else {
      policies.push_back(make_policy(desc.text(), env));
    }
  }
  return policies;
}

// Everything decided once, on rank 0: the options resolved and parsed (RunPlan::resolve), then
// checked against each other, the world size and the model's config.json; descriptors and index
// backends are checked by building the policies once, locally, with one-entry caches (the
// descriptor keys, the cache options and the index backend are checked as the run will build
// them; no cache memory is allocated twice). semskip::Error naming the option on a refusal.
RunPlan decide_plan(const RunConfig& cfg, int world_size) {
  RunPlan plan = RunPlan::resolve(cfg);
  SEMSKIP_THROW_IF_NOT_MSG(plan.shard_of == 0 || world_size == 1,
                           "--shard-of runs one shard in a single process; under mpirun each of the {} ranks runs "
                           "its own shard", world_size);
  const ModelConfig mc = ModelConfig::from_file(plan.model + "/config.json");
  SEMSKIP_THROW_IF_NOT_MSG(world_size % plan.ep == 0,
                           "--ep {} needs a multiple of {} ranks (e.g. mpirun -np {}), this run has {}", plan.ep,
                           plan.ep, plan.ep, world_size);
  SEMSKIP_THROW_IF_NOT_MSG(plan.ep == 1 || mc.n_experts > 0,
                           "--ep {}: {} has no MoE layers, there are no experts to distribute", plan.ep, plan.model);
  resolve_comm_kind(plan.comm, have_nccl(), plan.device);  // --comm nccl off CUDA is refused here, before any work
  PolicyEnv check_env = plan.policy_env(mc, at::kCPU);
  check_env.make_cache = [](int64_t key_dim, int64_t value_dim, const CacheOptions& o) -> std::unique_ptr<SkipCache> {
    SEMSKIP_THROW_IF_NOT_MSG(o.capacity >= 1, "cache capacity must be ≥ 1, got {}", o.capacity);
    CacheOptions one = o;
    one.capacity = 1;
    return std::make_unique<LocalCache>(key_dim, value_dim, one);
  };
  for (const auto& p : make_policies(plan, check_env))
    check_policy_requirements(*p, plan.calib_requests > 0, plan.max_new_tokens);
  return plan;
}

// What identifies a run's configuration for --resume: config_json without the report's own
// path (a report may be moved before it is resumed).
nlohmann::json resume_key(nlohmann::json config) {
  config.erase("report");
  return config;
}

struct AgreedRun {
  RunPlan plan;
  int64_t first_step = 0;     // > 0: resuming the partial report plan.report after these steps
  bool resuming = false;      // plan.report is a partial report to continue
  std::string user_metadata;  // a resumed report's own (rank 0)
};

// The partial report that `--resume <path>` continues, checked against the resolved plan:
// its steps_done, or a refusal naming the path and what differs.
int64_t check_resumable(const std::string& path, const RunPlan& plan, int world_size, std::string& user_metadata) {
  report::ReportReader reader(path);
  const std::string status =
      reader.has_attr(report::kStatusAttr) ? report::attr_to_string(reader.attr(report::kStatusAttr)) : "";
  SEMSKIP_THROW_IF_NOT_MSG(status != report::kStatusComplete,
                           "{}: the report is complete (status \"complete\"); there is nothing to resume", path);
  SEMSKIP_THROW_IF_NOT_MSG(status == report::kStatusPartial && reader.has_attr("steps_done") &&
                               reader.has_attr("config_json"),
                           "{}: not a partial report of `semskip run` (status \"{}\"); only a run stopped by a "
                           "signal can be resumed", path, status);
  const nlohmann::json saved = resume_key(nlohmann::json::parse(report::attr_to_string(reader.attr("config_json"))));
  const nlohmann::json mine = resume_key(plan.to_json());
  if (saved != mine) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : mine.items())
      if (!saved.contains(k) || saved[k] != v) keys.push_back(k);
    for (const auto& [k, v] : saved.items())
      if (!mine.contains(k)) keys.push_back(k);
    SEMSKIP_THROW_MSG("{}: the report was written by another configuration (differing keys: {}); resume it with "
                      "its own options (`semskip run --resume {}` alone)", path, join(keys, ", "), path);
  }
  const int64_t saved_world = std::get<int64_t>(reader.attr("world_size"));
  SEMSKIP_THROW_IF_NOT_MSG(saved_world == world_size,
                           "{}: the report was written by {} ranks, this run has {}; resume it with as many", path,
                           saved_world, world_size);
  if (reader.has_attr("user_metadata")) user_metadata = report::attr_to_string(reader.attr("user_metadata"));
  return std::get<int64_t>(reader.attr("steps_done"));
}

// Rank 0's decision on every rank (the caller's own in one process); a refusal is thrown on
// every rank. With `resume` naming an existing file, its recorded configuration fills every
// option given neither on the command line nor by --config / --config-from, and the result
// must equal it; a missing file starts the run from its beginning (a requeued job stopped
// before its first checkpoint).
AgreedRun agree_on_plan(RunConfig& cli, CLI::App* sub, const std::string& config_file, const std::string& config_from,
                        const std::string& resume, Runtime& rt) {
  auto decide = [&]() {
    // All write into `cli` through CLI11: the command line first, then --config, then the
    // report of --config-from, then the report being resumed.
    AgreedRun a;
    a.resuming = !resume.empty() && std::filesystem::exists(resume);
    if (!config_file.empty()) apply_toml(sub, config_file);
    apply_slurm_array_shard(sub, cli.shard_of);
    if (!config_from.empty()) apply_report_config(sub, config_from);
    if (a.resuming) apply_report_config(sub, resume);
    a.plan = decide_plan(cli, rt.world_size());
    if (!resume.empty()) {
      a.plan.report = resume;  // a resumed run writes the report it resumes, whatever --report says
      if (a.resuming) a.first_step = check_resumable(resume, a.plan, rt.world_size(), a.user_metadata);
    }
    return a;
  };
  if (rt.world_size() == 1) return decide();
  nlohmann::json decided;
  AgreedRun mine;
  if (rt.is_root()) {
    try {
      mine = decide();
      decided = {{"config", mine.plan.to_json()}, {"first_step", mine.first_step}, {"resuming", mine.resuming}};
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
  AgreedRun a;
  a.plan = RunPlan::from_json(decided["config"]);
  a.first_step = decided["first_step"].get<int64_t>();
  a.resuming = decided["resuming"].get<bool>();
  a.user_metadata = mine.user_metadata;
  return a;
}

// The result table as JSON: one object per policy row, the fields of the printed table
// (fractions, not percentages; null where the table prints '-').
nlohmann::json summary_json(const std::vector<PolicySummary>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const PolicySummary& s : rows) {
    const AccuracySummary& a = s.accuracy;
    nlohmann::json row = {
        {"policy", s.policy},
        {"index", s.index.empty() ? nlohmann::json() : nlohmann::json(s.index)},
        {"hit_rate", s.index.empty() ? nlohmann::json() : nlohmann::json(s.hit_rate)},
        {"saved_gross", s.flops_saved_gross},
        {"saved_net", s.flops_saved_net},
        {"top1_agree", a.top1_agreement.value},
        {"top1_agree_lo", a.top1_agreement.lo},
        {"top1_agree_hi", a.top1_agreement.hi},
        {"kl", a.kl.value},
        {"ppl_full", a.ppl_full.value},
        {"ppl", a.ppl_skip.value},
    };
    if (a.has_generation) row["gen_exact"] = a.gen_exact_match.value;
    out.push_back(row);
  }
  return out;
}

// Rank 0's calibration residual streams on every rank (computed only when a policy needs them).
// With expert parallelism (`ep`: each rank holds only its experts) the calibration forward is
// collective: every rank runs it over the same calibration requests (the same on every rank,
// engine/run_requests.h) in lockstep, and rank 0's result is broadcast, so that all ranks use
// one calibration bit for bit. Otherwise rank 0 computes it alone.
CalibrationSet agree_on_calibration(const Evaluator& ev, const std::vector<Request>& calib_requests,
                                    const std::vector<std::unique_ptr<SkipPolicy>>& policies, Runtime& rt,
                                    bool ep) {
  bool needed = false, mlp_out = false;
  for (const auto& p : policies) {
    needed = needed || p->needs_calibration();
    mlp_out = mlp_out || (p->needs_calibration() && p->needs_calibration_mlp_out());
  }
  if (rt.world_size() == 1) return ev.calibrate(calib_requests, mlp_out);
  if (!needed) return {};
  CalibrationSet mine;
  if (rt.is_root() || ep) mine = ev.calibrate(calib_requests, mlp_out);
  // No calibration requests: nothing to send (an empty tensor).
  const auto or_empty = [](const at::Tensor& t) { return t.defined() ? t : at::empty({0}, at::kFloat); };
  CalibrationSet calib;
  calib.states = rt.world().broadcast(or_empty(mine.states), 0);  // fp32 [L+1, N, d]
  if (calib.states.dim() != 3) calib.states = at::Tensor();
  if (mlp_out) {
    calib.mlp_out = rt.world().broadcast(or_empty(mine.mlp_out), 0);  // fp32 [L, N, d]
    if (calib.mlp_out.dim() != 3) calib.mlp_out = at::Tensor();
  }
  return calib;
}

// The GPU of every rank, "host/cuda:N" in rank order ("cuda:N" in one process); none on CPU.
// Collective: every rank runs on the same kind of device (one --device for the job).
// Each rank's GPU ("host/cuda:N") and its memory, in rank order; empty on CPU.
std::pair<std::vector<std::string>, std::vector<int64_t>> gpus_of_ranks(const at::Device& device, Runtime& rt) {
  if (!device.is_cuda()) return {};
  const std::vector<GpuDescription> visible = visible_gpus();
  const int64_t index = device.has_index() ? device.index() : 0;
  const int64_t memory = index < static_cast<int64_t>(visible.size()) ? visible[static_cast<size_t>(index)].memory_bytes : 0;
  if (rt.world_size() == 1) return {{device.str()}, {memory}};
  const at::Tensor all = rt.world().allgather(at::tensor({index, memory}, at::kLong));  // [ranks, 2]
  std::pair<std::vector<std::string>, std::vector<int64_t>> out;
  for (int r = 0; r < rt.world_size(); ++r) {
    out.first.push_back(fmt::format("{}/cuda:{}", rt.hosts()[static_cast<size_t>(r)], all[r][0].item<int64_t>()));
    out.second.push_back(all[r][1].item<int64_t>());
  }
  return out;
}

// The test hooks of interruption, read from the environment: SEMSKIP_TEST_SIGNAL_AT_STEP=<k>
// or <k>@<rank> raises SIGTERM in this process (on that rank only) at the boundary after k
// steps, as a signal from outside would arrive; SEMSKIP_TEST_SIGNAL_IN_WRITE=1 raises it again
// while a report is being written after a stop was requested (a second signal mid-write).
struct TestSignals {
  int64_t at_step = -1;
  bool in_write = false;
};

TestSignals test_signals(int rank) {
  TestSignals t;
  if (const char* v = std::getenv("SEMSKIP_TEST_SIGNAL_AT_STEP"); v != nullptr && *v != '\0') {
    const std::string text(v);
    const size_t at = text.find('@');
    const int64_t step = parse_int(text.substr(0, at), "SEMSKIP_TEST_SIGNAL_AT_STEP");
    const bool mine = at == std::string::npos || parse_int(text.substr(at + 1), "SEMSKIP_TEST_SIGNAL_AT_STEP") == rank;
    if (mine) t.at_step = step;
  }
  if (const char* v = std::getenv("SEMSKIP_TEST_SIGNAL_IN_WRITE")) t.in_write = std::string(v) == "1";
  return t;
}

int run_experiment(RunConfig& cli, CLI::App* sub, const std::string& config_file, const std::string& config_from,
                   const ReportFlags& report_flags, const std::string& resume, int64_t checkpoint_every) {
  install_stop_handlers();
  // Before any policy exists: a kokkos: index needs Kokkos, and its views must go first.
  KokkosScope kokkos;
  Runtime& rt = Runtime::get();
  const bool distributed = rt.world_size() > 1;
  SEMSKIP_THROW_IF_NOT_MSG(checkpoint_every >= 0, "--checkpoint-every must be ≥ 0, got {}", checkpoint_every);
  const AgreedRun agreed = agree_on_plan(cli, sub, config_file, config_from, resume, rt);
  const RunPlan& plan = agreed.plan;
  if (plan.threads > 0) at::set_num_threads(static_cast<int>(plan.threads));
  // Before any work: the report can be written (and --force allows replacing one), the
  // metadata is well formed. Rank 0 writes the report; its refusal ends every rank. A resumed
  // report is replaced by its continuation and keeps its metadata unless new is given.
  std::string user_metadata = "{}";
  if (rt.is_root() && !plan.report.empty()) {
    ReportFlags flags = report_flags;
    flags.force = flags.force || !resume.empty();
    if (agreed.resuming && flags.metadata.empty()) {
      report::check_report_path(plan.report, true);
      if (!agreed.user_metadata.empty()) user_metadata = agreed.user_metadata;
    } else {
      user_metadata = check_report_flags(flags, plan.report);
    }
  }
  const std::string report_path = plan.report.empty() ? "" : std::filesystem::absolute(plan.report).string();
  const std::string resume_json = resume_key(plan.to_json()).dump();

  ModelOptions mo = plan.model_options(rt.device(plan.device));
  // The ranks' communicator for the run (--comm): MPI, or NCCL on this rank's GPU. The plan was
  // agreed over MPI before the device was known.
  Communicator& world = rt.world(plan.comm, mo.device);
  // An explicit --comm (mpi or nccl, not auto) runs the MoE layers through the communicator at
  // --ep 1 too, so that a world of one exercises its all-to-alls (NCCL's on one GPU). Under
  // expert parallelism each rank loads and holds only the routed experts it owns
  // (ModelOptions::experts, read from the checkpoint by offset), so weight memory per rank
  // falls with --ep. Every forward of the run is then collective over the rank's group: the
  // calibration (agree_on_calibration), each step's full and policy runs and their decode
  // steps (the evaluator's lockstep: a rank without requests runs empty steps); the sweeps and
  // --orders, which rerun policies on one rank, are refused with more than one rank.
  std::unique_ptr<ExpertParallelGroup> ep;
  {
    const ModelConfig shape = ModelConfig::from_file(plan.model + "/config.json");
    if (plan.ep > 1 || (plan.comm != "auto" && shape.n_experts > 0)) {
      ep = std::make_unique<ExpertParallelGroup>(world, static_cast<int>(plan.ep), &shape);
      mo.experts = ep->shard(shape.n_experts);
    }
  }
  Transformer model = Transformer::load(plan.model, mo);
  const ModelConfig& mc = model.config();
  // /per_rank weight_bytes and peak_rss_bytes: what this rank holds (every weight is in the
  // compute dtype, so bytes = held parameters × its element size).
  auto rank_memory = [&] {
    RankMemory m;
    m.weight_bytes = model.n_params() * static_cast<int64_t>(c10::elementSize(scalar_type(mo.dtype)));
    m.peak_rss_bytes = peak_resident_bytes();
    return m;
  };

  WorkloadContext wctx;
  wctx.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(plan.model + "/tokenizer.json"));
  wctx.model_type = mc.model_type;
  // Requests past the model's vocabulary or positions are refused by name while loading.
  wctx.model_vocab_size = mc.vocab_size;
  wctx.max_model_len = plan.max_model_len > 0 ? plan.max_model_len : mc.max_position_embeddings;
  wctx.max_model_len_source = plan.max_model_len > 0 ? "--max-model-len" : "max_position_embeddings in config.json";
  ShardChoice shard;
  shard.strategy = plan.shard;
  shard.n_shards = distributed ? rt.world_size() : std::max<int>(1, static_cast<int>(plan.shard_of));
  shard.shard = distributed ? rt.rank() : static_cast<int>(plan.shard_index);
  shard.seed = plan.seed;
  const RunRequests reqs = load_run_requests(plan.workload, wctx, plan.calib_requests, plan.max_requests,
                                             plan.max_new_tokens, shard, &world);
  const std::string workload = plan.workload.describe();
  SEMSKIP_THROW_IF_NOT_MSG(reqs.n_evaluated_total > 0 || !reqs.calibration.empty(),
                           "workload '{}' yields no requests at all: every entry was empty or filtered out (for "
                           "chat sets: no user turn followed by an assistant turn; check the file and the "
                           "workload's filters, `semskip workload stats` shows what it reads)",
                           workload);
  SEMSKIP_THROW_IF_NOT_MSG(reqs.n_evaluated_total > 0,
                           "workload '{}' has no requests left after the {} calibration requests (it yields {}; "
                           "lower --calib-requests or give a larger workload)",
                           workload, reqs.calibration.size(), reqs.calibration.size());

  // The tune/eval protocol and the orders study rerun policies in one process (engine/sweep.h).
  SEMSKIP_THROW_IF_NOT_MSG(!(plan.is_sweep() || plan.orders > 1) || (!distributed && shard.n_shards == 1 && resume.empty()),
                           "--split, --tune-workload and --orders run in one process, without --shard-of or --resume");
  SEMSKIP_THROW_IF_NOT_MSG(!(plan.is_sweep() && plan.orders > 1),
                           "--orders with a sweep: run the selected configuration again with --orders");
  // Defaults that must not fail on a small workload: PCA keys fitted to the calibration at hand.
  RunPlan built = plan;
  {
    int64_t calib_tokens = 0;
    for (const Request& r : reqs.calibration) calib_tokens += r.n_tokens_prompt();
    std::vector<std::string> warnings;
    built.policies = fit_policies_to_calibration(plan.policies, calib_tokens,
                                                 static_cast<int64_t>(reqs.calibration.size()), warnings);
    for (const std::string& w : warnings)
      if (rt.is_root()) std::fprintf(stderr, "semskip run: warning: %s\n", w.c_str());
  }
  BootstrapUnits units;
  units.unit = reqs.unit;
  units.unit_of_id = reqs.unit_of_id;
  PolicyEnv env = plan.policy_env(mc, model.device());
  attach_distribution(env, plan.cache_mode, world, plan.ep > 1 ? &ep->comm() : nullptr);
  std::vector<std::unique_ptr<SkipPolicy>> policies = make_policies(built, env);
  EvalOptions eo;
  eo.batch = plan.batch;
  eo.max_new_tokens = plan.max_new_tokens;
  eo.eos_token = mc.eos_token_id;
  eo.row_exec = plan.row_exec;
  EvalDist dist;
  dist.world = distributed ? &world : nullptr;
  dist.ep = ep ? &ep->executor() : nullptr;
  dist.counted = {&world};
  if (ep) dist.counted.push_back(&ep->comm());
  Evaluator ev(model, eo, dist);
  if (rt.is_root()) {
    std::fprintf(stderr, "semskip run: %s, %lld requests (+%zu calibration), %zu policies, skip-exec %s",
                 plan.model.c_str(), static_cast<long long>(reqs.n_evaluated_total), reqs.calibration.size(),
                 policies.size(), row_exec_name(plan.row_exec));
    if (distributed || shard.n_shards > 1)
      std::fprintf(stderr, ", shard %d of %d (%s)", shard.shard, shard.n_shards, shard_strategy_name(plan.shard));
    if (distributed)
      std::fprintf(stderr, ", %d ranks on %d hosts, cache %s, sync %s", rt.world_size(), rt.n_nodes(),
                   cache_mode_name(plan.cache_mode), plan.sync.describe().c_str());
    if (ep) std::fprintf(stderr, ", %s", ep->describe(mc.n_experts).c_str());
    std::fprintf(stderr, "; %s, cache capacity %lld entries (--capacity; a policy's cap= overrides)",
                 describe_coverage(reqs).c_str(), static_cast<long long>(plan.capacity));
    std::fputc('\n', stderr);
    if (!reqs.n_available_exact)
      std::fprintf(stderr, "semskip run: counting the requests past --max-requests stopped: %s\n",
                   reqs.available_note.c_str());
  }
  // A resumed run's policies continue from the saved state (a fitted projection needs no new
  // calibration); a fresh run forgets any state left by an earlier run of this report.
  RunControl control;
  if (agreed.resuming) {
    control.first_step = agreed.first_step;
    control.restored =
        load_checkpoint(report_path, rt.rank(), rt.world_size(), resume_json, agreed.first_step, policies);
    if (rt.is_root())
      std::fprintf(stderr, "semskip run: resuming %s after step %lld\n", plan.report.c_str(),
                   static_cast<long long>(agreed.first_step));
  } else if (!report_path.empty()) {
    remove_checkpoints(report_path, rt.rank());
  }
  const CalibrationSet calib = agree_on_calibration(ev, reqs.calibration, policies, rt, ep != nullptr);
  // /per_rank_layer counts the evaluation's MoE dispatches, not the calibration's.
  if (ep) ep->executor().reset_stats();
  const auto gpus = gpus_of_ranks(model.device(), rt);
  const TestSignals hooks = test_signals(rt.rank());

  // /per_rank_layer: every rank's dispatch cost per MoE layer (ExpertParallel::layer_stats),
  // gathered to rank 0 (collective over the world); empty without expert parallelism.
  report::Table layer_table;
  auto gather_layer_table = [&] {
    if (!ep) return;
    const at::Tensor all =
        world.allgather(ep->executor().layer_stats_tensor(mc.n_layers)).to(at::kCPU);  // [ranks, L, fields]
    report::Table t;
    std::vector<int64_t> rank_col, layer_col;
    std::vector<std::string> host_col;
    std::vector<std::vector<int64_t>> fields(static_cast<size_t>(ExpertParallel::kEpLayerFields));
    for (int64_t r = 0; r < all.size(0); ++r) {
      for (int64_t l = 0; l < mc.n_layers; ++l) {
        if (!mc.is_moe_layer(l)) continue;
        rank_col.push_back(r);
        host_col.push_back(rt.hosts()[static_cast<size_t>(r)]);
        layer_col.push_back(l);
        for (int64_t f = 0; f < ExpertParallel::kEpLayerFields; ++f)
          fields[static_cast<size_t>(f)].push_back(all[r][l][f].item<int64_t>());
      }
    }
    const char* names[] = {"ep_n_calls",        "ep_n_rows_routed",  "ep_n_rows_sent", "ep_n_rows_recv",
                           "ep_bytes_dispatch", "ep_bytes_combine", "ep_t_alltoall_ns"};
    t.add("rank", rank_col).add("host", host_col).add("layer", layer_col);
    for (int64_t f = 0; f < ExpertParallel::kEpLayerFields; ++f) t.add(names[f], fields[static_cast<size_t>(f)]);
    layer_table = t;
  };

  auto summaries_of = [&](const std::vector<GatheredResult>& gathered) {
    std::vector<PolicySummary> summaries;
    for (const GatheredResult& r : gathered)
      summaries.push_back(summarize(r, static_cast<int>(plan.bootstrap), plan.seed,
                                    plan.cache_mode == CacheMode::replicated, units));
    return summaries;
  };
  // Rank 0's report of the steps done so far; `status` complete or partial. The temporary file
  // is registered so that a second signal mid-write removes it.
  // Tables of the sweep or the orders study, written beside the others (`extra`).
  std::vector<std::pair<std::string, report::Table>> extra_tables;
  auto write_report = [&](const std::vector<GatheredResult>& gathered, const std::vector<PolicySummary>& summaries,
                          const std::string& status, int64_t steps_done) {
    set_inflight_temp((report_path + ".tmp").c_str());
    report::ReportWriter writer(report_path);
    report::RunInfo info = collect_environment({});
    info.config_json = plan.to_json().dump();
    info.user_metadata_json = user_metadata;
    info.world_size = rt.world_size();
    info.hosts = rt.hosts();
    info.gpus = gpus.first;  // each rank's device, in rank order (empty on CPU)
    info.gpu_memory_bytes = gpus.second;
    report::write_run_info(writer, info);
    report::write_slurm_allocation(writer);
    writer.set_attr("command", std::string("run"));
    writer.set_attr("model_type", mc.model_type);
    writer.set_attr("workload", workload);
    writer.set_attr("workload_bad_lines_skipped", reqs.counters.n_bad_lines_skipped);
    writer.set_attr("cache_mode", std::string(cache_mode_name(plan.cache_mode)));
    writer.set_attr("sync", plan.sync.describe());
    writer.set_attr("skip_exec", std::string(row_exec_name(plan.row_exec)));
    writer.set_attr("ep_size", plan.ep);
    writer.set_attr("comm", world.describe());
    writer.set_attr("shard", std::string(shard_strategy_name(plan.shard)));
    writer.set_attr("steps_done", steps_done);
    // What was evaluated of what the workload has (before any tune/eval split), and the capacity.
    writer.set_attr("n_requests_evaluated", reqs.n_evaluated_total);
    writer.set_attr("n_requests_available", reqs.n_available_total);
    writer.set_attr("bootstrap_unit", reqs.unit);
    writer.set_attr("n_units_evaluated", reqs.n_units_evaluated);
    writer.set_attr("n_units_available", reqs.n_units_available);
    writer.set_attr("n_available_exact", static_cast<int64_t>(reqs.n_available_exact));
    writer.set_attr("cache_capacity", plan.capacity);
    for (const auto& [path, table] : extra_tables) writer.write_table(path, table);
    writer.write_table("/summary", summary_table(summaries));
    writer.write_table("/per_layer", per_layer_table(gathered));
    writer.write_table("/per_rank", per_rank_table(gathered, rt.hosts()));
    if (ep) writer.write_table("/per_rank_layer", layer_table);
    writer.write_table("/requests", requests_table(gathered));
    writer.write_table("/steps", steps_table(gathered));
    if (hooks.in_write && stop_requested()) std::raise(stop_signal());
    writer.commit(status);
    set_inflight_temp(nullptr);
  };

  if (!report_path.empty()) {
    int64_t last_checkpoint = agreed.first_step;
    control.checkpoint_every = checkpoint_every;
    // Every rank's state first, then the report: once the report of boundary k exists, so do
    // the state files it needs (the gather in between waits for every rank's write).
    control.checkpoint = [&, last_checkpoint](int64_t steps_done, const std::vector<PolicyResult>& so_far) mutable {
      save_checkpoint(report_path, rt.rank(), rt.world_size(), resume_json, steps_done, so_far, policies,
                      last_checkpoint);
      last_checkpoint = steps_done;
      const std::vector<GatheredResult> gathered = gather_results(so_far, distributed ? &world : nullptr, rank_memory());
      gather_layer_table();
      if (rt.is_root()) write_report(gathered, summaries_of(gathered), report::kStatusPartial, steps_done);
    };
  }
  control.stop_requested = [&](int64_t steps_done) {
    if (steps_done == hooks.at_step) std::raise(SIGTERM);
    return stop_requested();
  };
  // Rank 0's progress at each step boundary (core/progress.h): its own shard's requests and
  // tokens scaled to the job (the ranks step in lockstep), the first cache policy's hit rate.
  ProgressLine progress(rt.is_root() && sub->get_option("--quiet")->count() == 0, reqs.n_evaluated_total);
  control.stop_requested = [&, stop = control.stop_requested](int64_t steps_done) {
    if (progress.enabled()) {
      const size_t mine = std::min(reqs.evaluated.size(), static_cast<size_t>(steps_done * plan.batch));
      int64_t tokens = 0;
      for (size_t i = 0; i < mine; ++i) tokens += reqs.evaluated[i].n_tokens_prompt();
      const int64_t done = std::min<int64_t>(reqs.n_evaluated_total, static_cast<int64_t>(mine) * rt.world_size());
      double hit_rate = -1;
      std::string name = fmt::format("{} policies", policies.size());
      for (const auto& p : policies) {
        const CacheStats cs = p->cache_stats();
        if (p->index_descriptor().empty()) continue;
        hit_rate = cs.lookups > 0 ? static_cast<double>(cs.hits) / static_cast<double>(cs.lookups) : 0.0;
        name = p->describe();
        break;
      }
      progress.update(done, tokens * rt.world_size(), hit_rate, name);
    }
    return stop ? stop(steps_done) : false;
  };
  // One process, no checkpoints: the configurations `configs` on `requests`, summarized.
  auto run_configurations = [&](const std::vector<Request>& requests, const std::vector<SweepConfiguration>& configs,
                                const BootstrapUnits& u, std::vector<GatheredResult>& gathered) {
    std::vector<std::unique_ptr<SkipPolicy>> ps;
    for (const SweepConfiguration& c : configs) {
      PolicyEnv e = env;
      e.index_descriptor = c.index.empty() ? kDefaultIndexDescriptor : c.index;
      ps.push_back(make_policy(c.policy, e));
    }
    gathered = gather_results(ev.run(requests, ps, calib), nullptr, rank_memory());
    std::vector<PolicySummary> out;
    for (const GatheredResult& r : gathered)
      out.push_back(summarize(r, static_cast<int>(plan.bootstrap), plan.seed, false, u));
    return out;
  };
  std::vector<SweepConfiguration> all_configs;
  for (const auto& p : policies) all_configs.push_back({p->describe(), p->index_descriptor()});
  if (plan.is_sweep()) {
    SweepOutcome sw;
    sw.target_agreement = plan.target_agreement;
    std::vector<Request> tune, eval;
    BootstrapUnits tune_units = units;
    if (plan.split_fraction > 0) {
      SplitParts parts = split_by_units(reqs.evaluated, plan.split_fraction, plan.seed, "--split");
      tune = std::move(parts.tune);
      eval = std::move(parts.eval);
      sw.n_units_tune = parts.n_units_tune;
      sw.n_units_eval = parts.n_units_eval;
    } else {
      const RunRequests t = load_run_requests(WorkloadSpec::parse(plan.tune_workload), wctx, 0, plan.max_requests,
                                              plan.max_new_tokens, shard, nullptr);
      SEMSKIP_THROW_IF_NOT_MSG(!t.evaluated.empty(), "--tune-workload '{}' yields no requests", plan.tune_workload);
      tune = t.evaluated;
      eval = reqs.evaluated;
      tune_units.unit = t.unit;
      tune_units.unit_of_id = t.unit_of_id;
      sw.n_units_tune = t.n_units_evaluated;
      sw.n_units_eval = reqs.n_units_evaluated;
    }
    sw.n_requests_tune = static_cast<int64_t>(tune.size());
    sw.n_requests_eval = static_cast<int64_t>(eval.size());
    std::vector<GatheredResult> tune_gathered, eval_gathered;
    sw.tune = run_configurations(tune, all_configs, tune_units, tune_gathered);
    std::vector<SweepConfiguration> selected;
    select_on_tune(sw, selected);
    if (!selected.empty()) sw.eval = run_configurations(eval, selected, units, eval_gathered);
    if (plan.json)
      std::fputs((summary_json(sw.eval).dump(2) + "\n").c_str(), stdout);
    else
      std::fputs((format_sweep_text(sw) + describe_coverage(reqs) + "\n").c_str(), stdout);
    if (!report_path.empty()) {
      extra_tables.emplace_back("/sweep", sweep_table(sw));
      int64_t steps = 0;
      for (const GatheredResult& g : eval_gathered) steps = std::max<int64_t>(steps, static_cast<int64_t>(g.steps.size()));
      write_report(eval_gathered, sw.eval, report::kStatusComplete, steps);
      std::fprintf(stderr, "semskip run: report written to %s\n", plan.report.c_str());
    }
    return 0;
  }
  const RunOutcome outcome = ev.run(reqs.evaluated, policies, calib, control);
  progress.finish();
  if (!outcome.complete) {
    if (rt.is_root()) {
      if (report_path.empty())
        std::fprintf(stderr, "semskip run: stopped by signal %d after step %lld; no --report, nothing was saved\n",
                     stop_signal(), static_cast<long long>(outcome.steps_done));
      else
        std::fprintf(stderr, "semskip run: stopped by signal %d after step %lld; partial report written to %s "
                     "(continue with `semskip run --resume %s`)\n", stop_signal(),
                     static_cast<long long>(outcome.steps_done), plan.report.c_str(), plan.report.c_str());
    }
    return kExitInterrupted;
  }
  const std::vector<GatheredResult> gathered = gather_results(outcome.results, distributed ? &world : nullptr, rank_memory());
  gather_layer_table();
  if (rt.is_root()) {
    const std::vector<PolicySummary> summaries = summaries_of(gathered);
    // --orders: each cache policy again over permuted requests, from a fresh cache.
    OrdersStudy orders;
    if (plan.orders > 1) {
      for (size_t p = 0; p < summaries.size(); ++p) {
        if (summaries[p].index.empty()) continue;
        orders.policy.push_back(summaries[p].policy);
        orders.index.push_back(summaries[p].index);
        orders.runs.push_back({summaries[p]});
      }
      std::vector<SweepConfiguration> cache_configs;
      for (size_t p = 0; p < orders.policy.size(); ++p) cache_configs.push_back({orders.policy[p], orders.index[p]});
      for (int64_t k = 1; k < plan.orders && !cache_configs.empty(); ++k) {
        std::vector<GatheredResult> g;
        const std::vector<PolicySummary> rerun =
            run_configurations(permuted_requests(reqs.evaluated, k, plan.seed), cache_configs, units, g);
        for (size_t p = 0; p < rerun.size(); ++p) orders.runs[p].push_back(rerun[p]);
      }
      extra_tables.emplace_back("/orders", orders_table(orders));
    }
    if (plan.json)
      std::fputs((summary_json(summaries).dump(2) + "\n").c_str(), stdout);
    else
      std::fputs((format_summary_text(summaries) + describe_coverage(reqs) +
                  fmt::format(", cache capacity {} entries (--capacity; a policy's cap= overrides)\n", plan.capacity))
                     .c_str(),
                 stdout);
    if (plan.orders > 1 && !plan.json) std::fputs(format_orders_text(orders).c_str(), stdout);
    if (!report_path.empty()) {
      write_report(gathered, summaries, report::kStatusComplete, outcome.steps_done);
      std::fprintf(stderr, "semskip run: report written to %s\n", plan.report.c_str());
    }
  }
  if (!report_path.empty()) {
    // The state files go only once the complete report is in place on rank 0.
    if (distributed) world.barrier();
    remove_checkpoints(report_path, rt.rank());
    if (distributed) world.barrier();
    if (rt.is_root()) remove_checkpoint_dir(report_path);
  }
  return 0;
}

// Registers `field` as the option `key` of run_option_table(): its flag, help and default.
template <typename T>
void add_table_option(CLI::App* sub, const std::string& key, T& field, std::set<std::string>& added) {
  const RunOptionInfo* info = find_run_option(key);
  SEMSKIP_ASSERT(info != nullptr);
  added.insert(info->key);
  CLI::Option* opt;
  if constexpr (std::is_same_v<T, bool>) {
    opt = sub->add_flag(info->flag, field, info->help);
  } else {
    opt = sub->add_option(info->flag, field, info->help);
  }
  if (!info->is_flag && !info->default_text.empty()) opt->default_str(info->default_text);
}

}  // namespace

void add_run_command(CLI::App& app, CommandRegistry& reg) {
  auto cfg = std::make_shared<RunConfig>();
  auto config_file = std::make_shared<std::string>();
  auto config_from = std::make_shared<std::string>();
  auto sub_ptr = std::make_shared<CLI::App*>(nullptr);
  auto report_flags = std::make_shared<ReportFlags>();
  auto resume = std::make_shared<std::string>();
  auto checkpoint_every = std::make_shared<int64_t>(kDefaultCheckpointEvery);
  CLI::App* sub = reg.add(app, "run",
                          "Compare skip policies against the full model on one workload: FLOPs saved, "
                          "accuracy lost (Stage-1 experiment)",
                          [cfg, config_file, config_from, sub_ptr, report_flags, resume, checkpoint_every]() {
                            return run_experiment(*cfg, *sub_ptr, *config_file, *config_from, *report_flags, *resume,
                                                  *checkpoint_every);
                          });
  *sub_ptr = sub;
  sub->add_option("--config", *config_file,
                  "TOML file with any of these options (keys: the long options without --, '-' or '_')");
  sub->add_option("--config-from", *config_from,
                  "report of an earlier `semskip run`: rerun its recorded configuration (config_json); the "
                  "command line and --config win");
  std::set<std::string> added;
  RunConfig& c = *cfg;
  add_table_option(sub, "model", c.model, added);
  add_table_option(sub, "random_init", c.random_init, added);
  add_table_option(sub, "dtype", c.dtype, added);
  add_table_option(sub, "device", c.device, added);
  add_table_option(sub, "workload", c.workload, added);
  add_table_option(sub, "chunk", c.chunk, added);
  add_table_option(sub, "max_requests", c.max_requests, added);
  add_table_option(sub, "calib_requests", c.calib_requests, added);
  add_table_option(sub, "batch", c.batch, added);
  add_table_option(sub, "max_new_tokens", c.max_new_tokens, added);
  add_table_option(sub, "max_model_len", c.max_model_len, added);
  add_table_option(sub, "policies", c.policies, added);
  add_table_option(sub, "indexes", c.indexes, added);
  add_table_option(sub, "capacity", c.capacity, added);
  add_table_option(sub, "bootstrap", c.bootstrap, added);
  add_table_option(sub, "seed", c.seed, added);
  add_table_option(sub, "threads", c.threads, added);
  add_table_option(sub, "report", c.report, added);
  add_table_option(sub, "json", c.json, added);
  add_table_option(sub, "cache_mode", c.cache_mode, added);
  add_table_option(sub, "sync", c.sync, added);
  add_table_option(sub, "skip_exec", c.skip_exec, added);
  add_table_option(sub, "ep", c.ep, added);
  add_table_option(sub, "comm", c.comm, added);
  add_table_option(sub, "shard", c.shard, added);
  add_table_option(sub, "shard_of", c.shard_of, added);
  add_table_option(sub, "shard_index", c.shard_index, added);
  add_table_option(sub, "split", c.split, added);
  add_table_option(sub, "tune_workload", c.tune_workload, added);
  add_table_option(sub, "target_agreement", c.target_agreement, added);
  add_table_option(sub, "orders", c.orders, added);
  SEMSKIP_ASSERT(added.size() == run_option_table().size());  // every option of the table has its flag
  // What the report records about the run beyond its configuration, and whether it may replace
  // an existing report: not part of the configuration (config_json), so not TOML keys.
  add_report_flags(sub, *report_flags);
  sub->add_flag("--quiet", "No progress line (rank 0 shows one on long runs: live on a terminal, a log line "
                "every 30 s into a file)");
  // Interruption and resumption: how the run is carried out, not what it computes, so not part
  // of config_json either.
  sub->add_option("--resume", *resume,
                  "continue the partial report of a run stopped by a signal: its recorded configuration, its "
                  "saved state (<report>.checkpoint/), the steps not yet run; the result equals the uninterrupted "
                  "run's. Other options must agree with the recorded ones. A missing file starts the run from the "
                  "beginning and writes it (a requeued job stopped before its first checkpoint)");
  sub->add_option("--checkpoint-every", *checkpoint_every,
                  "with a report: save the state and a partial report every this many micro-batch steps (0: only "
                  "when stopped by a signal)")
      ->default_str(std::to_string(kDefaultCheckpointEvery));
  sub->footer(fmt::format(
      "Interruption: SIGTERM, SIGINT or SIGUSR1 (sbatch --signal) finishes the micro-batch step in flight, writes "
      "the completed steps to the report with status \"partial\" and exits with status {}; `semskip run --resume "
      "<report>` continues it. A second signal ends the run at once, leaving the previous report as it was.",
      kExitInterrupted));
}

}  // namespace semskip
