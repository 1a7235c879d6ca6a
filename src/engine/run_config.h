#pragma once
// What `semskip run` does (docs/conventions.md rule 7: run-time choices, apart from ModelConfig),
// in two forms:
//   RunConfig  the options as given: what the command line and a TOML file (--config) or a
//              report (--config-from) write into, text as typed. Every default is here, and
//              run_option_table() lists each option with its default and help text: `--help`
//              prints them and the TOML keys are the table's keys.
//   RunPlan    the run decided once (rank 0): defaults filled in, every value checked and parsed
//              (dtype, device, workload spec, policy descriptors, cache mode, sync rule, shard
//              rule). It is broadcast to the ranks as to_json() and recorded in the report as
//              the `config_json` attribute, whose keys are exactly the TOML keys; that JSON fed
//              back as a configuration (--config-from) gives the same plan.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "model/layer_plan.h"
#include "model/model_options.h"
#include "parallel_cache/cache_mode.h"
#include "skip/descriptor.h"
#include "skip/skip_policy.h"
#include "skip/sync_rule.h"
#include "workloads/sharding.h"
#include "workloads/workload_spec.h"

namespace semskip {

struct ModelConfig;

struct RunConfig {
  std::string model;                 // model folder; empty: the embedded tiny-dense
  bool random_init = false;          // build the model from config.json with random weights
  std::string dtype = "fp32";        // compute dtype
  std::string device = "cpu";        // cpu | cuda | cuda:<n>
  std::string workload;              // workload spec; empty: the shipped held-out text sample
  int64_t chunk = 128;               // teacher-forced chunk length of text workloads (tokens)
  int64_t max_requests = 40;         // requests evaluated after calibration (0: all)
  int64_t calib_requests = 8;        // leading requests used for calibration only
  int64_t batch = 1;                 // sequences per micro-batch step
  int64_t max_new_tokens = 0;        // greedy tokens generated per request (0: teacher-forced only)
  int64_t max_model_len = 0;         // positions per request (0: the model's max_position_embeddings)
  std::vector<std::string> policies; // policy descriptors; empty: default_policies()
  std::vector<std::string> indexes;  // index descriptors for cache policies; empty: kDefaultIndexDescriptor
  int64_t capacity = kDefaultCacheCapacity;  // cache capacity (entries)
  int64_t bootstrap = 1000;          // bootstrap resamples for the 95% intervals
  uint64_t seed = 0;
  int64_t threads = 0;               // intra-op CPU threads (0: OMP_NUM_THREADS / all cores)
  std::string report = "semskip-run.h5";  // HDF5 report path; empty: no report
  bool json = false;                 // print the result table as JSON instead of text
  // Distribution (docs/architecture.md §4); without mpirun a world of one rank.
  std::string cache_mode = "local";  // local | replicated | sharded
  std::string sync = "token";        // token | batch:<f> | global[:<f>] (skip/sync_rule.h)
  std::string skip_exec = "gather";  // rows of a skipping layer: gather | bucket | mask (model/layer_plan.h)
  int64_t ep = 1;                    // expert-parallel group size (ranks per group)
  std::string comm = "auto";         // communicator: auto | mpi | nccl (comm/nccl_communicator.h)
  std::string shard = "round-robin"; // how requests are split over ranks: round-robin | contiguous | balanced
  int64_t shard_of = 0;              // single process only: run the shard `shard_index` of this many (0: all)
  int64_t shard_index = 0;
  // Tune/eval protocol (engine/sweep.h): a split turns the run into a sweep that selects on tune
  // and reports on eval. "" (none) | F | tune=F: the fraction of units (documents, conversations)
  // that tune, drawn with --seed.
  std::string split;
  std::string tune_workload;        // workload spec of the tune part (the workload is then all eval)
  double target_agreement = 0.90;   // sweep: least top-1 agreement on tune for a configuration to be selected
  int64_t orders = 1;               // cache policies rerun over this many request orders (order 0: the workload's)

  // The policies a run compares when none is given.
  static std::vector<std::string> default_policies();
  // Checks ranges; semskip::Error naming the option.
  void validate() const;
};

// One option of `semskip run`: its config_json key (the long option without --, '_' for '-';
// the repeatable --policy and --index record their lists as `policies` and `indexes`), the
// flag, the default as --help shows it ("" when the help text says what an empty value means)
// and the help text. A TOML file may use the key or the flag without --, '-' or '_' alike.
struct RunOptionInfo {
  std::string key;
  std::string flag;
  std::string default_text;
  std::string help;
  bool is_flag = false;   // a boolean switch
  bool is_list = false;   // repeatable; a TOML array
};
// Every option of `semskip run` except --config and --config-from, in --help order; the
// defaults are RunConfig{}'s (default_policies() and kDefaultIndexDescriptor for the lists).
const std::vector<RunOptionInfo>& run_option_table();
// What a policy needs of the model it runs on (PolicyEnv): its layer count, residual width and
// MoE layers (target=routed skips only these); the rest of the environment at its defaults.
PolicyEnv model_policy_env(const ModelConfig& mc);
// The entry of `key` (either spelling); nullptr when there is none.
const RunOptionInfo* find_run_option(const std::string& key);

struct RunPlan {
  std::string model;  // resolved folder
  bool random_init = false;
  DType dtype = DType::fp32;
  at::Device device = at::kCPU;  // "cuda" without an index: each rank's own GPU
  WorkloadSpec workload;
  int64_t chunk = 0, max_requests = 0, calib_requests = 0, batch = 1, max_new_tokens = 0;
  int64_t max_model_len = 0;  // 0: the model's max_position_embeddings
  std::vector<Descriptor> policies;  // canonical descriptors
  std::vector<std::string> indexes;
  int64_t capacity = kDefaultCacheCapacity;
  int64_t bootstrap = 0;
  uint64_t seed = 0;
  int64_t threads = 0;
  std::string report;
  bool json = false;
  CacheMode cache_mode = CacheMode::local;
  SyncRule sync;
  RowExec row_exec = RowExec::gather;
  int64_t ep = 1;
  std::string comm = "auto";  // auto | mpi | nccl, as given (resolved per rank against its device)
  ShardStrategy shard = ShardStrategy::round_robin;
  int64_t shard_of = 0, shard_index = 0;
  double split_fraction = 0;  // 0: no --split
  std::string tune_workload;  // "" or a parsed, canonical spec text
  double target_agreement = 0.90;
  int64_t orders = 1;
  bool is_sweep() const { return split_fraction > 0 || !tune_workload.empty(); }

  // Defaults filled in, ranges checked, every value parsed; semskip::Error naming the option.
  // What needs the model or the world (ep, shard-of, the policies built) is checked by the
  // caller (drivers/cmd_run.cpp).
  static RunPlan resolve(RunConfig cfg);
  // Keys: exactly run_option_table()'s; values: the canonical text of each parsed value.
  nlohmann::json to_json() const;
  // How the plan loads its model on `device`: dtype, random weights and their seed, the
  // position limit (every command that loads the run's model loads it alike).
  ModelOptions model_options(at::Device device) const;
  // The policies' environment for a model of config mc on `device`: model_policy_env(mc) with
  // this plan's capacity, seed and sync rule (every command that builds the run's policies
  // builds them alike).
  PolicyEnv policy_env(const ModelConfig& mc, at::Device device) const;
  // The inverse of to_json (every key required): how ranks receive rank 0's decision.
  static RunPlan from_json(const nlohmann::json& j);
  // The options that give this plan (to_json's values as RunConfig text).
  RunConfig to_config() const;
};

}  // namespace semskip
