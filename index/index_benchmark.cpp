#include "index/index_benchmark.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "core/timing.h"
#include "metrics/timing.h"
#include "core/error.h"
#include "core/strings.h"
#include "index/descriptor.h"
#include "index/index_factory.h"
#include "index/npy_file.h"
#include "index/recall.h"
#include "index/synthetic_vectors.h"

namespace semskip {

namespace {

// Parameters a built index changes without rebuilding (VectorIndex::set_search_parameter).
constexpr const char* kSearchParameters[] = {"nprobe", "efSearch"};

}  // namespace

std::string index_build_key(const std::string& descriptor) {
  IndexDescriptor desc = IndexDescriptor::parse(descriptor);
  for (const char* key : kSearchParameters) (void)desc.take(key);
  std::string out = desc.backend() + ":" + desc.body();
  for (const auto& [k, v] : desc.remaining()) out += "|" + k + "=" + v;
  return out;
}

IndexBenchData make_index_bench_data(const std::string& data, int64_t n, int64_t dim,
                                     int64_t n_query_rows, uint64_t seed) {
  IndexBenchData out;
  out.n = n;
  out.dim = dim;
  if (data == "clustered") {
    out.keys = clustered_vectors(n, dim, seed, 0);
    out.queries = clustered_vectors(n_query_rows, dim, seed, 1);
  } else if (data == "uniform") {
    out.keys = uniform_vectors(n, dim, seed, 0);
    out.queries = uniform_vectors(n_query_rows, dim, seed, 1);
  } else {
    NpyMatrix m = read_npy_matrix(data);
    SEMSKIP_THROW_IF_NOT_MSG(m.cols == dim, "{}: vectors have dimension {}, the sweep asks for {}",
                             data, m.cols, dim);
    SEMSKIP_THROW_IF_NOT_MSG(m.rows >= n + n_query_rows,
                             "{}: {} rows, need {} keys + {} queries", data, m.rows, n, n_query_rows);
    out.keys.assign(m.data.begin(), m.data.begin() + n * dim);
    out.queries.assign(m.data.begin() + n * dim, m.data.begin() + (n + n_query_rows) * dim);
  }
  return out;
}

SearchFigures derive_search_figures(const std::vector<double>& batch_seconds,
                                    int64_t queries_per_batch) {
  SEMSKIP_THROW_IF_NOT_MSG(!batch_seconds.empty(), "derive_search_figures: no samples");
  // The one timing protocol's order statistics (core/timing.h); queries/s at the median.
  const TimingStats t = summarize_samples(batch_seconds);
  SearchFigures f;
  f.queries_per_s = t.rate(static_cast<double>(queries_per_batch));
  f.latency_mean_s = t.mean_s;
  f.latency_p50_s = t.median_s;
  f.latency_p90_s = t.p90_s;
  f.latency_p99_s = t.p99_s;
  f.latency_min_s = t.min_s;
  f.latency_max_s = t.max_s;
  return f;
}

IndexBenchResult run_index_bench_case(const IndexBenchCase& config, const IndexBenchData& data,
                                      const std::vector<int64_t>& truth, IndexBenchCache* cache,
                                      const std::string& data_key) {
  const int64_t q = config.queries;
  const int64_t k = config.k;
  SEMSKIP_THROW_IF_NOT_MSG(config.repeat >= 1 && config.warmup >= 0 && q >= 1 && k >= 1,
                           "index-bench: need repeat ≥ 1, warmup ≥ 0, queries ≥ 1, k ≥ 1");
  SEMSKIP_ASSERT(static_cast<int64_t>(data.queries.size()) >= (config.warmup + config.repeat) * q * data.dim);
  SEMSKIP_ASSERT(static_cast<int64_t>(truth.size()) == config.repeat * q * k);

  IndexBenchResult r;
  r.config = config;
  r.threads = at::get_num_threads();

  // Search-time parameters of this descriptor, applied to a kept index.
  IndexDescriptor desc = IndexDescriptor::parse(config.descriptor);
  std::vector<std::pair<std::string, int64_t>> search_params;
  for (const char* key : kSearchParameters)
    if (auto v = desc.take(key)) search_params.emplace_back(key, parse_int(*v, fmt::format("index descriptor '{}': {}", config.descriptor, key)));
  // The names set are part of the key: a kept index whose nprobe was set must not serve a
  // descriptor that means FAISS's default.
  std::string key = fmt::format("{}@{}/{}", index_build_key(config.descriptor), data_key, data.dim);
  for (const auto& p : search_params) key += "|" + p.first;
  std::unique_ptr<VectorIndex> owned;
  VectorIndex* index = nullptr;
  if (cache && !data_key.empty() && cache->key == key && cache->index) {
    bool all_taken = true;
    for (const auto& [name, value] : search_params)
      all_taken = cache->index->set_search_parameter(name, value) && all_taken;
    if (all_taken) {
      index = cache->index.get();
      r.build_s = cache->build_s;
    }
  }
  if (!index) {
    if (cache) cache->index.reset();  // its memory is free before the next index is built
    const Stopwatch build_clock;
    owned = make_index(config.descriptor, data.dim);
    if (!owned->is_trained()) owned->train(data.n, data.keys.data());
    std::vector<int64_t> ids(static_cast<size_t>(data.n));  // int64 [n]: key row = id
    std::iota(ids.begin(), ids.end(), int64_t{0});
    owned->add(data.n, data.keys.data(), ids.data());
    r.build_s = build_clock.seconds();
    index = owned.get();
  }
  r.device = index->device().str();
  r.memory_bytes = index->memory_bytes();
  r.lookup_flops_batch = index->lookup_flops(q);

  // All batches are staged on the queries' device before the clock starts.
  at::Device query_device = index->device();
  if (!config.query_device.empty()) {
    try {
      query_device = at::Device(config.query_device);
    } catch (const c10::Error&) {
      SEMSKIP_THROW_MSG("index-bench: query device '{}' is not cpu, cuda or cuda:<i>",
                        config.query_device);
    }
    SEMSKIP_THROW_IF_NOT_MSG(!query_device.is_cuda() || at::hasCUDA(),
                             "index-bench: query device '{}' needs a CUDA build and a GPU",
                             config.query_device);
  }
  r.query_device = query_device.str();
  at::Tensor values;  // bf16 [n, value_dim] where the index is: the cached updates
  if (config.value_dim > 0)
    values = at::randn({data.n, config.value_dim},
                       at::TensorOptions().device(index->device()).dtype(at::kBFloat16));
  const int64_t n_batches = config.warmup + config.repeat;
  at::Tensor all_queries = at::from_blob(const_cast<float*>(data.queries.data()),
                                         {n_batches * q, data.dim}, at::kFloat)
                               .to(query_device);  // float32 [n_batches·q, dim]
  // The copy to the device has finished before the first clock starts (a host read waits).
  (void)all_queries.narrow(0, 0, 1).to(at::kCPU);
  std::vector<int64_t> found(static_cast<size_t>(config.repeat * q * k));  // int64 [repeat·q, k]
  for (int64_t b = 0; b < n_batches; ++b) {
    at::Tensor batch = all_queries.narrow(0, b * q, q);
    const Stopwatch clock;
    SearchResult res = index->search(batch, k);
    at::Tensor fetched;  // bf16 [q, value_dim] on the queries' device
    if (values.defined()) {
      // −1 (no match) fetches row 0: a run would ignore it, but it costs the same.
      at::Tensor best = res.ids.select(1, 0).clamp_min(0).to(values.device());
      fetched = values.index_select(0, best).to(query_device);
    }
    synchronize(query_device);
    if (index->device() != query_device) synchronize(index->device());
    const double dt = clock.seconds();
    at::Tensor ids_host = res.ids.to(at::kCPU).contiguous();
    if (b < config.warmup) continue;
    r.batch_seconds.push_back(dt);
    std::copy_n(ids_host.data_ptr<int64_t>(), q * k, found.begin() + (b - config.warmup) * q * k);
  }
  r.figures = derive_search_figures(r.batch_seconds, q);
  if (owned && cache && !data_key.empty()) {
    cache->key = key;
    cache->build_s = r.build_s;
    cache->index = std::move(owned);
  }
  const int64_t n_scored = config.repeat * q;
  r.recall_at_1 = recall_at_k(n_scored, 1, found.data(), k, truth.data(), k);
  r.recall_at_k = recall_at_k(n_scored, k, found.data(), k, truth.data(), k);
  return r;
}

std::vector<IndexBenchSample> index_bench_samples(const std::vector<IndexBenchResult>& results) {
  std::vector<IndexBenchSample> out;
  for (size_t i = 0; i < results.size(); ++i)
    for (size_t j = 0; j < results[i].batch_seconds.size(); ++j)
      out.push_back({static_cast<int64_t>(i), static_cast<int64_t>(j), results[i].batch_seconds[j]});
  return out;
}

const report::FieldTable<IndexBenchResult>& index_bench_fields() {
  using R = IndexBenchResult;
  using C = IndexBenchCase;
  using F = SearchFigures;
  static const report::FieldTable<R> t = [] {
    report::FieldTable<R> t;
    t.member("descriptor", "text", "the index descriptor", &R::config, &C::descriptor);
    t.add_string("backend", "text", "its backend (`faiss`, `faiss-gpu`, `torch`, `kokkos`)",
                 [](const R& r) { return IndexDescriptor::parse(r.config.descriptor).backend(); });
    t.member("device", "text", "where it searched (`cpu`, `cuda:0`)", &R::device);
    t.member("data", "text", "the data: `clustered`, `uniform` or a file", &R::config, &C::data);
    t.member("n_keys", "keys", "stored keys", &R::config, &C::n);
    t.member("dim", "elements", "dimension", &R::config, &C::dim);
    t.member("n_queries", "queries", "queries per search batch", &R::config, &C::queries);
    t.member("k", "neighbours", "neighbours per query", &R::config, &C::k);
    t.member("query_device", "text", "where the queries started and the results ended (engine-step mode)",
             &R::query_device);
    t.member("value_dim", "elements", "width of the value fetched per query (0: none)", &R::config,
             &C::value_dim);
    t.member("seed", "seed", "data seed", &R::config, &C::seed);
    t.member("n_warmup", "batches", "untimed batches", &R::config, &C::warmup);
    t.member("n_repeat", "batches", "timed batches", &R::config, &C::repeat);
    t.member("n_threads", "threads", "OpenMP threads", &R::threads);
    t.member("build_s", "s", "time to train and add the keys", &R::build_s);
    t.member("queries_per_s", "queries/s", "n_queries / median batch time", &R::figures, &F::queries_per_s);
    t.member("latency_mean_s", "s", "mean per search batch", &R::figures, &F::latency_mean_s);
    t.member("latency_p50_s", "s", "median per search batch", &R::figures, &F::latency_p50_s);
    t.member("latency_p90_s", "s", "90th percentile per search batch", &R::figures, &F::latency_p90_s);
    t.member("latency_p99_s", "s", "99th percentile per search batch", &R::figures, &F::latency_p99_s);
    t.member("latency_min_s", "s", "fastest search batch", &R::figures, &F::latency_min_s);
    t.member("latency_max_s", "s", "slowest search batch", &R::figures, &F::latency_max_s);
    t.member("recall_at_1", "fraction", "recall@1 against exact float64 search", &R::recall_at_1);
    t.member("recall_at_k", "fraction", "recall@k against exact float64 search", &R::recall_at_k);
    t.member("memory_bytes", "bytes", "the index's `memory_bytes()`", &R::memory_bytes);
    t.member("lookup_batch_flops", "FLOPs", "FLOPs charged for one batch (`index/lookup_cost.h`)",
             &R::lookup_flops_batch);
    t.add_int("lookup_query_flops", "FLOPs", "FLOPs charged for one query", [](const R& r) {
      return r.lookup_flops_batch / r.config.queries;
    });
    t.member("host", "text", "where it ran", &R::host);
    t.member("git_revision", "text", "the sources it was built from", &R::git_revision);
    return t;
  }();
  return t;
}

const report::FieldTable<IndexBenchSample>& index_bench_sample_fields() {
  using S = IndexBenchSample;
  static const report::FieldTable<S> t = [] {
    report::FieldTable<S> t;
    t.member("bench_row", "row", "row of `/index/bench`", &S::bench_row);
    t.member("repetition", "batch", "the timed batch", &S::repetition);
    t.member("latency_s", "s", "its time", &S::latency_s);
    return t;
  }();
  return t;
}

}  // namespace semskip
