#pragma once
// RunConfig: what `semskip run` does, from the command line or a TOML file (docs/conventions.md rule 7:
// run-time choices, apart from ModelConfig). Every field has its default here; the CLI
// prints them in --help and the report records the resolved values.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace semskip {

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
  std::vector<std::string> policies; // policy descriptors; empty: the default comparison set
  std::vector<std::string> indexes;  // index descriptors for cache policies; empty: faiss:Flat
  int64_t capacity = 4096;           // default cache capacity (entries)
  int64_t bootstrap = 1000;          // bootstrap resamples for the 95% intervals
  uint64_t seed = 0;
  int64_t threads = 0;               // intra-op CPU threads (0: OMP_NUM_THREADS / all cores)
  std::string report = "semskip-run.h5";  // HDF5 report path; empty: no report
  // Distribution (docs/architecture.md §4); without mpirun a world of one rank.
  std::string cache_mode = "local";  // local | replicated | sharded
  std::string sync = "token";        // token | batch:<f> | global[:<f>] (skip/sync_rule.h)
  int64_t ep = 1;                    // expert-parallel group size (ranks per group)
  std::string shard = "round-robin"; // how requests are split over ranks: round-robin | contiguous | balanced
  int64_t shard_of = 0;              // single process only: run the shard `shard_index` of this many (0: all)
  int64_t shard_index = 0;

  // The policies a run compares when none is given.
  static std::vector<std::string> default_policies();
  // Checks ranges; semskip::Error naming the option.
  void validate() const;
  nlohmann::json to_json() const;
  // The inverse of to_json (every key required): how ranks receive rank 0's decision.
  static RunConfig from_json(const nlohmann::json& j);
};

}  // namespace semskip
