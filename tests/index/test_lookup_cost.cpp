// lookup_flops by hand (docs/architecture.md §5): each formula with numbers worked out here, then each
// backend's lookup_flops() against the same hand figures for its current size and parameters.
#include <gtest/gtest.h>

#include "core/error.h"
#include "index/index_factory.h"
#include "index/lookup_cost.h"
#include "index/synthetic_vectors.h"
#include "index_test_util.h"

namespace semskip {
namespace {

TEST(LookupCost, FormulasByHand) {
  // flat: 2·d·N.
  EXPECT_EQ(flat_lookup_flops(16, 100, 3), 2 * 16 * 100 * 3);  // 9600
  EXPECT_EQ(flat_lookup_flops(256, 100000, 32), 1638400000);
  EXPECT_EQ(flat_lookup_flops(16, 0, 3), 0);
  // IVF: 2·d·(nlist + nprobe·N/nlist) = 2·16·(16 + 4·62.5) = 8512 per query.
  EXPECT_EQ(ivf_lookup_flops(16, 1000, 16, 4, 3), 25536);
  // Fractional list size: 2·3·(4 + 3·2.5) = 69.
  EXPECT_EQ(ivf_lookup_flops(3, 10, 4, 3, 1), 69);
  // nprobe beyond nlist probes every list: 2·3·(4 + 10) = 84.
  EXPECT_EQ(ivf_lookup_flops(3, 10, 4, 9, 1), 84);
  // IVF-PQ: 2·d·nlist + 2·d·2^nbits + M·nprobe·N/nlist = 512 + 8192 + 4·4·62.5 = 9704.
  EXPECT_EQ(ivfpq_lookup_flops(16, 1000, 16, 4, 4, 8, 1), 9704);
  EXPECT_EQ(ivfpq_lookup_flops(16, 1000, 16, 4, 4, 4, 2), 2 * (512 + 512 + 1000));
  // PQ: 2·d·2^nbits + M·N = 8192 + 4000.
  EXPECT_EQ(pq_lookup_flops(16, 1000, 4, 8, 1), 12192);
  // HNSW: L = ⌈ln 1000 / ln 16⌉ = ⌈2.49⌉ = 3; scored = min(1000, 2·16·20 + 16·3) = 688.
  EXPECT_EQ(hnsw_lookup_flops(16, 1000, 16, 20, 1), 2 * 16 * 688);
  // Small index: every key at most; L ≥ 1. N=100: min(100, 2·16·20 + 16·2) = 100.
  EXPECT_EQ(hnsw_lookup_flops(16, 100, 16, 20, 2), 2 * 2 * 16 * 100);
  EXPECT_EQ(hnsw_lookup_flops(16, 0, 16, 20, 2), 0);
  // N=1000, M=32, ef=16: L = ⌈6.91/3.47⌉ = 2; min(1000, 1024 + 64) = 1000.
  EXPECT_EQ(hnsw_lookup_flops(8, 1000, 32, 16, 1), 2 * 8 * 1000);
  EXPECT_THROW(flat_lookup_flops(16, 10, -1), Error);
}

// Builds `descriptor` with n clustered keys of dimension d (trained on them if needed).
std::unique_ptr<VectorIndex> built(const std::string& descriptor, int64_t d, int64_t n) {
  auto index = make_index(descriptor, d);
  const std::vector<float> keys = clustered_vectors(n, d, 3, 0);
  if (!index->is_trained()) index->train(n, keys.data());
  index->add(n, keys.data(), test::iota_ids(n).data());
  return index;
}

TEST(InsertCost, FormulasByHand) {
  // HNSW, d = 4, M = 2, efConstruction = 3, N = 10: L = ⌈ln 10 / ln 2⌉ = 4; the search scores
  // min(10, 2·2·3 + 2·4) = 10, the selection min(10, 3)·min(10, 4) = 12, the back-links
  // 4·(4 + 1) = 20: 42 similarities of 2·4 FLOPs.
  EXPECT_EQ(hnsw_insert_flops(4, 10, 2, 3), 336);
  // N = 1: search 1, selection 1·1, back-links 1·2: 4 similarities.
  EXPECT_EQ(hnsw_insert_flops(4, 1, 2, 3), 32);
  EXPECT_EQ(hnsw_insert_flops(4, 0, 2, 3), 0);
  // N = 10^6, M = 32, efC = 40, d = 256: L = 4; 2·32·40 + 32·4 = 2688, 40·64 = 2560, 64·65 = 4160.
  EXPECT_EQ(hnsw_insert_flops(256, 1000000, 32, 40), 2 * 256 * (2688 + 2560 + 4160));
  // k-means: 25 iterations of 2·d·k·n, n capped at 256·k.
  EXPECT_EQ(kmeans_train_flops(8, 4, 100), 25 * 2 * 8 * 4 * 100);
  EXPECT_EQ(kmeans_train_flops(8, 2, 1000), 25 * 2 * 8 * 2 * 512);
}

TEST(InsertCost, DescriptorsGiveTheirModel) {
  const IndexCostModel flat = index_cost_model("torch:flat");
  EXPECT_EQ(flat.kind, IndexCostModel::Kind::flat);
  EXPECT_EQ(index_insert_flops(flat, 16, 100), 0);
  EXPECT_EQ(index_train_flops(flat, 16, 100), 0);
  EXPECT_EQ(index_insert_flops(index_cost_model("faiss:Flat"), 16, 100), 0);
  EXPECT_EQ(index_insert_flops(index_cost_model("faiss:SQ8"), 16, 100), 0);
  const IndexCostModel hnsw = index_cost_model("faiss:HNSW2|efSearch=8|efConstruction=3");
  EXPECT_EQ(hnsw.kind, IndexCostModel::Kind::hnsw);
  EXPECT_EQ(hnsw.hnsw_m, 2);
  EXPECT_EQ(hnsw.ef_construction, 3);
  EXPECT_EQ(index_insert_flops(hnsw, 4, 10), 336);
  EXPECT_EQ(index_cost_model("faiss:HNSW32,SQ8").ef_construction, 40);  // FAISS's default
  const IndexCostModel ivf = index_cost_model("faiss:IVF16,Flat|nprobe=4|train_size=500");
  EXPECT_EQ(ivf.kind, IndexCostModel::Kind::ivf);
  EXPECT_EQ(ivf.train_size, 500);
  EXPECT_EQ(index_insert_flops(ivf, 8, 100), 2 * 8 * 16);
  EXPECT_EQ(index_train_flops(ivf, 8, 500), 25 * 2 * 8 * 16 * 500);
  // IVF-PQ: assignment plus a 2^4-code encoding; training both k-means (PQ on 256·16 at most).
  const IndexCostModel ivfpq = index_cost_model("faiss:IVF16,PQ4x4");
  EXPECT_EQ(ivfpq.kind, IndexCostModel::Kind::ivf_pq);
  EXPECT_EQ(index_insert_flops(ivfpq, 8, 100), 2 * 8 * 16 + 2 * 8 * 16);
  EXPECT_EQ(index_train_flops(ivfpq, 8, 300), 2 * 25 * 2 * 8 * 16 * 300);
  const IndexCostModel pq = index_cost_model("faiss:PQ4");
  EXPECT_EQ(pq.kind, IndexCostModel::Kind::pq);
  EXPECT_EQ(index_insert_flops(pq, 8, 100), 2 * 8 * 256);
  EXPECT_THROW(index_cost_model("faiss:LSH"), Error);
  EXPECT_THROW(index_cost_model("faiss:IVF16,LSH"), Error);
}

TEST(LookupCost, ExactBackendsChargeFlat) {
  std::vector<std::string> flat = {"torch:flat", "torch:flat|chunk=10"};
#ifdef SEMSKIP_WITH_KOKKOS
  flat.push_back("kokkos:flat");
#endif
#ifdef SEMSKIP_WITH_FAISS
  flat.push_back("faiss:Flat");
  flat.push_back("faiss:SQ8");
#endif
  for (const std::string& d : flat) {
    auto index = built(d, 16, 100);
    EXPECT_EQ(index->lookup_flops(3), 9600) << d;
    EXPECT_EQ(index->lookup_flops(0), 0) << d;
    const int64_t one = 5;
    index->remove(1, &one);
    EXPECT_EQ(index->lookup_flops(1), 2 * 16 * 99) << d << " follows the size";
  }
}

#ifdef SEMSKIP_WITH_FAISS
TEST(LookupCost, FaissIndexesUseTheirParameters) {
  EXPECT_EQ(built("faiss:IVF16,Flat|nprobe=4", 16, 1000)->lookup_flops(3), 25536);
  EXPECT_EQ(built("faiss:IVF16,SQ8|nprobe=4", 16, 1000)->lookup_flops(3), 25536);
  // Without nprobe FAISS probes 1 list: 2·16·(16 + 62.5) = 2512.
  EXPECT_EQ(built("faiss:IVF16,Flat", 16, 1000)->lookup_flops(1), 2512);
  EXPECT_EQ(built("faiss:IVF16,PQ4|nprobe=4", 16, 1000)->lookup_flops(1), 9704);
  EXPECT_EQ(built("faiss:IVF16,PQ4x4|nprobe=4", 16, 1000)->lookup_flops(2), 2 * (512 + 512 + 1000));
  EXPECT_EQ(built("faiss:PQ4", 16, 1000)->lookup_flops(1), 12192);
  EXPECT_EQ(built("faiss:HNSW16|efSearch=20", 16, 1000)->lookup_flops(1), 2 * 16 * 688);
  // FAISS's default efSearch is 16: min(1000, 2·16·16 + 16·3) = 560.
  EXPECT_EQ(built("faiss:HNSW16", 16, 1000)->lookup_flops(1), 2 * 16 * 560);
  EXPECT_EQ(built("faiss:HNSW16,SQ8|efSearch=20", 16, 1000)->lookup_flops(1), 2 * 16 * 688);
  // Keys waiting for training are searched exactly and charged as flat.
  auto staged = make_index("faiss:IVF16,Flat|nprobe=4|train_size=500", 16);
  const std::vector<float> keys = clustered_vectors(100, 16, 3, 0);
  staged->add(100, keys.data(), test::iota_ids(100).data());
  EXPECT_FALSE(staged->is_trained());
  EXPECT_EQ(staged->lookup_flops(3), 9600);
}
#endif

}  // namespace
}  // namespace semskip
