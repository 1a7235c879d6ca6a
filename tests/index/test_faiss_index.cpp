// FAISS-only behaviour: training on the first train_size keys (staging), refusing an
// untrained add, and parameters reaching the FAISS index.
#include <gtest/gtest.h>

#ifdef SEMSKIP_WITH_FAISS

#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>

#include "index/faiss_index.h"
#include "index/index_factory.h"
#include "index/synthetic_vectors.h"
#include "index_test_util.h"

namespace semskip {
namespace {

constexpr int64_t kDim = 16;

TEST(FaissIndex, TrainsOnFirstTrainSizeKeysAndSearchesStagedKeysExactly) {
  auto made = make_index("faiss:IVF8,Flat|nprobe=8|train_size=300", kDim);
  auto* index = dynamic_cast<FaissIndex*>(made.get());
  ASSERT_NE(index, nullptr);
  EXPECT_FALSE(index->is_trained());

  const std::vector<float> keys = clustered_vectors(500, kDim, 5, 0);
  const std::vector<int64_t> ids = test::iota_ids(500, 10);
  const std::vector<float> q = clustered_vectors(20, kDim, 5, 1);
  test::Stored stored{kDim};

  // 200 keys: below train_size, staged, searched exactly.
  index->add(200, keys.data(), ids.data());
  stored.add(200, keys.data(), ids.data());
  EXPECT_FALSE(index->is_trained());
  EXPECT_EQ(index->n_staged(), 200);
  const int64_t gone[] = {10, 11, 12};
  EXPECT_EQ(index->remove(3, gone), 3);
  for (int64_t id : gone) stored.remove(id);
  EXPECT_EQ(index->n_staged(), 197);
  std::vector<float> sims(20 * 5);
  std::vector<int64_t> found(20 * 5);
  index->search(20, q.data(), 5, sims.data(), found.data());
  test::expect_same_neighbours(stored, 20, q.data(), 5, test::brute_force(stored, 20, q.data(), 5),
                               found.data(), sims.data(), 1e-5, "staged");

  // 300 more: the count passes train_size, the index trains and takes every staged key.
  index->add(300, keys.data() + 200 * kDim, ids.data() + 200);
  stored.add(300, keys.data() + 200 * kDim, ids.data() + 200);
  EXPECT_TRUE(index->is_trained());
  EXPECT_EQ(index->n_staged(), 0);
  EXPECT_EQ(index->size(), 497);
  EXPECT_EQ(index->faiss_index().ntotal, 497);
  // nprobe = nlist: still exact after training.
  index->search(20, q.data(), 5, sims.data(), found.data());
  test::expect_same_neighbours(stored, 20, q.data(), 5, test::brute_force(stored, 20, q.data(), 5),
                               found.data(), sims.data(), 1e-5, "trained");
}

TEST(FaissIndex, UntrainedIndexRefusesAddWithoutTrainSize) {
  auto index = make_index("faiss:IVF8,Flat", kDim);
  const std::vector<float> keys = clustered_vectors(10, kDim, 5, 0);
  const std::string msg = test::error_of([&] { index->add(10, keys.data(), test::iota_ids(10).data()); });
  EXPECT_CONTAINS(msg, "'faiss:IVF8,Flat' is not trained");
  EXPECT_CONTAINS(msg, "train_size");
  EXPECT_EQ(index->size(), 0);
  // Too few training points for 8 centroids: FAISS's complaint, named.
  EXPECT_CONTAINS(test::error_of([&] { index->train(4, keys.data()); }), "FAISS train failed");
}

TEST(FaissIndex, ParametersReachFaiss) {
  auto ivf = make_index("faiss:IVF16,Flat|nprobe=5", kDim);
  const auto& f = dynamic_cast<FaissIndex&>(*ivf).faiss_index();
  EXPECT_EQ(dynamic_cast<const faiss::IndexIVF&>(f).nprobe, 5u);
  auto hnsw = make_index("faiss:HNSW8|efSearch=77", kDim);
  const auto& map = dynamic_cast<FaissIndex&>(*hnsw).faiss_index();
  const auto* inner = dynamic_cast<const faiss::IndexIDMap2&>(map).index;
  EXPECT_EQ(dynamic_cast<const faiss::IndexHNSW*>(inner)->hnsw.efSearch, 77);
  EXPECT_FALSE(hnsw->supports_remove());
}

}  // namespace
}  // namespace semskip

#endif  // SEMSKIP_WITH_FAISS
