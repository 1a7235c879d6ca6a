#pragma once
// One measurement of `semskip index-bench` (docs/conventions.md rules 11, 13): build the index from
// the keys (make_index, train when the index needs it, add with ids 0..n−1; timed once),
// search `warmup` batches untimed, then `repeat` timed batches of `queries` queries each, a
// different batch every time. Queries are staged on the index's device beforehand (or on
// query_device, the engine-step mode); the clock stops once the results (and the fetched
// values) are on the queries' device and that device (and the index's) has finished its work:
// results stay where a run would use them, and their copy to the host for scoring comes after
// the clock. recall@1 and recall@k are scored over all timed queries against exact_search
// (index/exact_search.h).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/vector_index.h"

#include "reports/field_table.h"

namespace semskip {

struct IndexBenchCase {
  std::string descriptor;
  std::string data;     // "clustered" | "uniform" | path of a .npy file
  int64_t n = 0;        // keys
  int64_t dim = 0;
  int64_t queries = 0;  // per batch
  int64_t k = 0;
  uint64_t seed = 0;
  int64_t warmup = 1;   // untimed batches
  int64_t repeat = 0;   // timed batches
  // Engine-step mode: the queries start on this device ("cpu", "cuda"; empty: the index's own)
  // and the results end there, as in a run whose keys come out of the model on the GPU; a
  // CPU index then pays the device→host copy of the queries and the host→device copy of the
  // results inside the clock.
  std::string query_device;
  // > 0: each timed batch also fetches the cached value of every query's best match (bf16
  // [n, value_dim] rows held where the index is, gathered by id and moved to the queries'
  // device), the other half of a lookup's cost in a run.
  int64_t value_dim = 0;
};

// Keys and queries of one (data, n, dim, batches, seed).
struct IndexBenchData {
  int64_t n = 0;
  int64_t dim = 0;
  std::vector<float> keys;     // float32 [n, dim]
  std::vector<float> queries;  // float32 [n_query_rows, dim]; batch b is rows [b·q, (b+1)·q)
};

// "clustered"/"uniform": synthetic (index/synthetic_vectors.h, keys stream 0, queries
// stream 1). Otherwise a .npy file of [rows, dim]: the first n rows are the keys, the next
// n_query_rows the queries; dim must match (semskip::Error otherwise, or if rows are short).
IndexBenchData make_index_bench_data(const std::string& data, int64_t n, int64_t dim,
                                     int64_t n_query_rows, uint64_t seed);

// Figures derived from the raw batch times — the one place they are defined.
struct SearchFigures {
  double queries_per_s = 0;   // queries per batch / median batch time
  double latency_mean_s = 0;  // per batch
  double latency_p50_s = 0;   // percentiles with linear interpolation (numpy's default)
  double latency_p90_s = 0;
  double latency_p99_s = 0;
  double latency_min_s = 0;
  double latency_max_s = 0;
};
SearchFigures derive_search_figures(const std::vector<double>& batch_seconds,
                                    int64_t queries_per_batch);

struct IndexBenchResult {
  IndexBenchCase config;
  std::string device;                 // where the index searched ("cpu", "cuda:0")
  std::string query_device;           // where the queries started and the results ended
  int64_t threads = 0;                // intra-op threads (OpenMP) during the run
  double build_s = 0;                 // make_index + train + add, one measurement
  std::vector<double> batch_seconds;  // raw timed samples, [repeat]
  SearchFigures figures;
  double recall_at_1 = 0;
  double recall_at_k = 0;
  int64_t memory_bytes = 0;
  int64_t lookup_flops_batch = 0;     // charged FLOPs of one batch (VectorIndex::lookup_flops)
  std::string host;                   // where and from what it ran: filled by the command
  std::string git_revision;
};

// One raw timed sample of a sweep point: a row of /index/bench_samples.
struct IndexBenchSample {
  int64_t bench_row = 0;   // the point's row of /index/bench
  int64_t repetition = 0;  // the timed batch
  double latency_s = 0;
};
std::vector<IndexBenchSample> index_bench_samples(const std::vector<IndexBenchResult>& results);

// The columns of /index/bench (one row per result) and /index/bench_samples, in order
// (reports/field_table.h; reports/SCHEMA.md is checked against them).
const report::FieldTable<IndexBenchResult>& index_bench_fields();
const report::FieldTable<IndexBenchSample>& index_bench_sample_fields();

// The descriptor without its search-time parameters (nprobe, efSearch), parameters kept in the
// order written: "faiss:IVF64,Flat|nprobe=8|train_size=9" → "faiss:IVF64,Flat|train_size=9".
std::string index_build_key(const std::string& descriptor);

// An index kept from one sweep point for the next: points whose descriptors differ only in
// search-time parameters, on the same data, share one trained and filled index (the reused
// rows report the build time of the point that built it), so an nprobe or efSearch sweep
// trains once.
struct IndexBenchCache {
  std::string key;  // index_build_key + the data's identity; empty: nothing kept
  std::unique_ptr<VectorIndex> index;
  double build_s = 0;
};

// data must hold (warmup + repeat)·queries query rows; truth: int64 [repeat·queries, k],
// the exact neighbours (key rows) of the timed queries, from exact_search. data_key names the
// data (the same key, the same keys and queries); with a cache, an index whose backend takes
// every search-time parameter of the descriptor is reused from and kept in it.
IndexBenchResult run_index_bench_case(const IndexBenchCase& config, const IndexBenchData& data,
                                      const std::vector<int64_t>& truth,
                                      IndexBenchCache* cache = nullptr,
                                      const std::string& data_key = "");

}  // namespace semskip
