// Search speed of every compiled vector-index backend at a few sizes (Google Benchmark).
//   bench_index [Google Benchmark flags]      e.g. --benchmark_filter='torch|N:10000/'
// One benchmark per (descriptor, N): clustered keys of d=256, batches of 32 queries, k=10. An
// index is built once per (descriptor, N), outside the timing, the first time its benchmark
// runs; each iteration searches the next batch of a pool of 64 batches, and the clock stops
// once the results are on the host (tensor API, as the semantic cache calls it).
// Counters: queries_per_s, lookup_query_flops (charged per query, index/lookup_cost.h) and
// lookup_flops_per_s (charged FLOPs over wall time). Recall is `semskip index-bench`'s job.
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "index/index_factory.h"
#include "index/kokkos_scope.h"
#include "index/synthetic_vectors.h"

namespace {

using namespace semskip;

constexpr int64_t kDim = 256;
constexpr int64_t kBatch = 32;
constexpr int64_t kPoolBatches = 64;
constexpr int64_t kK = 10;
constexpr uint64_t kSeed = 0;

// IVF lists for N keys: 4·√N rounded down to a power of two (256 at 10k, 1024 at 100k),
// and at most N/39, so k-means has the 39 points per centroid FAISS asks for.
int64_t nlist_for(int64_t n) {
  int64_t nlist = 16;
  while (nlist * 2 <= 4.0 * std::sqrt(static_cast<double>(n)) && nlist * 2 * 39 <= n) nlist *= 2;
  return nlist;
}

std::vector<std::string> descriptors(int64_t n) {
  std::vector<std::string> v = {"torch:flat"};
#ifdef SEMSKIP_WITH_KOKKOS
  v.push_back("kokkos:flat");
#endif
#ifdef SEMSKIP_WITH_FAISS
  const int64_t nlist = nlist_for(n);
  v.push_back("faiss:Flat");
  v.push_back(fmt::format("faiss:IVF{},Flat|nprobe=16", nlist));
  v.push_back(fmt::format("faiss:IVF{},SQ8|nprobe=16", nlist));
  v.push_back(fmt::format("faiss:IVF{},PQ32|nprobe=16", nlist));
  v.push_back("faiss:HNSW32|efSearch=64");
#endif
  (void)n;
  return v;
}

struct Built {
  std::unique_ptr<VectorIndex> index;
  at::Tensor queries;  // float32 [kPoolBatches·kBatch, kDim] on the index's device
};

// Indexes live here, so they are destroyed before the KokkosScope of main ends.
std::map<std::string, Built>& built_indexes() {
  static std::map<std::string, Built> built;
  return built;
}

Built& get(const std::string& descriptor, int64_t n) {
  const std::string key = fmt::format("{}@{}", descriptor, n);
  auto it = built_indexes().find(key);
  if (it != built_indexes().end()) return it->second;
  Built b;
  b.index = make_index(descriptor, kDim);
  std::vector<float> keys = clustered_vectors(n, kDim, kSeed, 0);  // float32 [n, kDim]
  if (!b.index->is_trained()) b.index->train(n, keys.data());
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[i] = i;
  b.index->add(n, keys.data(), ids.data());
  std::vector<float> q = clustered_vectors(kPoolBatches * kBatch, kDim, kSeed, 1);
  b.queries = at::from_blob(q.data(), {kPoolBatches * kBatch, kDim}, at::kFloat).to(b.index->device()).clone();
  return built_indexes().emplace(key, std::move(b)).first->second;
}

void BM_IndexSearch(benchmark::State& state, const std::string& descriptor, int64_t n) {
  Built& b = get(descriptor, n);
  int64_t batch = 0;
  for (auto _ : state) {
    at::Tensor q = b.queries.narrow(0, (batch++ % kPoolBatches) * kBatch, kBatch);
    SearchResult r = b.index->search(q, kK);
    at::Tensor ids = r.ids.to(at::kCPU);  // waits for device work
    benchmark::DoNotOptimize(ids.data_ptr<int64_t>());
  }
  const double queries = static_cast<double>(state.iterations() * kBatch);
  const double per_query = static_cast<double>(b.index->lookup_flops(1));
  state.counters["queries_per_s"] = benchmark::Counter(queries, benchmark::Counter::kIsRate);
  state.counters["lookup_query_flops"] = per_query;
  state.counters["lookup_flops_per_s"] = benchmark::Counter(queries * per_query, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  semskip::KokkosScope kokkos;
  for (int64_t n : {1000, 10000, 100000}) {
    for (const std::string& d : descriptors(n)) {
      benchmark::RegisterBenchmark(fmt::format("search/{}/N:{}", d, n).c_str(), BM_IndexSearch, d, n)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  built_indexes().clear();  // Kokkos views go before Kokkos is finalised
  return 0;
}
