// index-bench's reuse of one built index across search-time parameters
// (index/index_benchmark.h, IndexBenchCache; VectorIndex::set_search_parameter).
#include <gtest/gtest.h>

#include "index/exact_search.h"
#include "index/index_benchmark.h"
#include "index/index_factory.h"
#include "index/synthetic_vectors.h"
#include "index_test_util.h"

namespace semskip {
namespace {

TEST(IndexBuildKey, DropsOnlySearchParameters) {
  EXPECT_EQ(index_build_key("faiss:IVF64,Flat|nprobe=8"), "faiss:IVF64,Flat");
  EXPECT_EQ(index_build_key("faiss:IVF64,Flat|nprobe=8|train_size=900"), "faiss:IVF64,Flat|train_size=900");
  EXPECT_EQ(index_build_key("faiss:HNSW32|efSearch=16"), "faiss:HNSW32");
  EXPECT_EQ(index_build_key("torch:flat|device=cpu|dtype=bf16"), "torch:flat|device=cpu|dtype=bf16");
}

TEST(SetSearchParameter, BackendsTakeTheirOwnOnly) {
  auto torch = make_index("torch:flat", 8);
  EXPECT_FALSE(torch->set_search_parameter("nprobe", 4));
#ifdef SEMSKIP_WITH_FAISS
  auto ivf = make_index("faiss:IVF8,Flat", 8);
  EXPECT_TRUE(ivf->set_search_parameter("nprobe", 4));
  EXPECT_FALSE(ivf->set_search_parameter("efSearch", 4));
  EXPECT_CONTAINS(test::error_of([&] { ivf->set_search_parameter("nprobe", 9); }), "must be in 1..nlist=8");
  auto hnsw = make_index("faiss:HNSW8", 8);
  EXPECT_TRUE(hnsw->set_search_parameter("efSearch", 32));
  EXPECT_FALSE(hnsw->set_search_parameter("nprobe", 2));
#endif
}

#ifdef SEMSKIP_WITH_FAISS
TEST(IndexBenchCache, AnNprobeSweepTrainsOnceAndMatchesFreshIndexes) {
  IndexBenchCase c;
  c.data = "clustered";
  c.n = 3000;
  c.dim = 16;
  c.queries = 20;
  c.k = 10;
  c.seed = 4;
  c.warmup = 0;
  c.repeat = 3;
  const IndexBenchData data = make_index_bench_data(c.data, c.n, c.dim, c.repeat * c.queries, c.seed);
  std::vector<int64_t> truth(c.repeat * c.queries * c.k);
  exact_search(c.n, data.keys.data(), c.repeat * c.queries, data.queries.data(), c.dim, c.k, truth.data());

  IndexBenchCache cache;
  std::vector<IndexBenchResult> kept, fresh;
  for (const char* d : {"faiss:IVF32,Flat|nprobe=1", "faiss:IVF32,Flat|nprobe=4", "faiss:IVF32,Flat|nprobe=32"}) {
    c.descriptor = d;
    kept.push_back(run_index_bench_case(c, data, truth, &cache, "d1"));
    fresh.push_back(run_index_bench_case(c, data, truth));
  }
  // One build: the later rows carry the first row's build time, to the bit.
  EXPECT_EQ(kept[1].build_s, kept[0].build_s);
  EXPECT_EQ(kept[2].build_s, kept[0].build_s);
  // The same answers as an index built for that nprobe (FAISS's k-means is seeded).
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_DOUBLE_EQ(kept[i].recall_at_k, fresh[i].recall_at_k) << i;
    EXPECT_EQ(kept[i].lookup_flops_batch, fresh[i].lookup_flops_batch) << i;
  }
  EXPECT_LT(kept[0].recall_at_k, kept[2].recall_at_k);
  EXPECT_DOUBLE_EQ(kept[2].recall_at_k, 1.0);  // every list probed

  // Other data, or a descriptor without nprobe (FAISS's default), builds again.
  c.descriptor = "faiss:IVF32,Flat|nprobe=4";
  const IndexBenchResult other = run_index_bench_case(c, data, truth, &cache, "d2");
  EXPECT_NE(other.build_s, kept[0].build_s);
  c.descriptor = "faiss:IVF32,Flat";
  const IndexBenchResult plain = run_index_bench_case(c, data, truth, &cache, "d2");
  EXPECT_NE(plain.build_s, other.build_s);
  EXPECT_DOUBLE_EQ(plain.recall_at_k, fresh[0].recall_at_k);  // nprobe 1 again
}
#endif

TEST(IndexBench, EngineStepModeKeepsResultsOnTheQueryDeviceAndFetchesValues) {
  IndexBenchCase c;
  c.descriptor = "torch:flat";
  c.data = "clustered";
  c.n = 400;
  c.dim = 16;
  c.queries = 8;
  c.k = 3;
  c.warmup = 1;
  c.repeat = 3;
  c.query_device = "cpu";
  c.value_dim = 32;
  const IndexBenchData data = make_index_bench_data(c.data, c.n, c.dim, (c.warmup + c.repeat) * c.queries, c.seed);
  std::vector<int64_t> truth(c.repeat * c.queries * c.k);
  exact_search(c.n, data.keys.data(), c.repeat * c.queries, data.queries.data() + c.warmup * c.queries * c.dim,
               c.dim, c.k, truth.data());
  const IndexBenchResult r = run_index_bench_case(c, data, truth);
  EXPECT_EQ(r.query_device, "cpu");
  EXPECT_DOUBLE_EQ(r.recall_at_k, 1.0);
  c.query_device = "tpu";
  EXPECT_CONTAINS(test::error_of([&] { run_index_bench_case(c, data, truth); }), "query device 'tpu'");
  if (!at::hasCUDA()) {
    c.query_device = "cuda";
    EXPECT_CONTAINS(test::error_of([&] { run_index_bench_case(c, data, truth); }), "needs a CUDA build");
  }
}

}  // namespace
}  // namespace semskip
