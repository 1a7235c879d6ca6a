// lookup_flops by hand (docs/architecture.md §5): each formula with numbers worked out here, then each
// backend's lookup_flops() against the same hand figures for its current size and parameters.
#include <gtest/gtest.h>

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
