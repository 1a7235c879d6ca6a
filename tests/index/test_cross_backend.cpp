// Exact backends against each other (docs/conventions.md rule 12, FAISS compareIndices): on the same
// keys and queries every pair returns the same ids, similarities within 1e-5. The dimension
// is odd and the chunks small, so the kernels' tails and the chunk merges are exercised.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "index/index_factory.h"
#include "index/synthetic_vectors.h"
#include "index_test_util.h"

namespace semskip {
namespace {

constexpr int64_t kDim = 37;

std::vector<std::string> exact_descriptors() {
  std::vector<std::string> v = {"torch:flat", "torch:flat|chunk=100"};
  if (at::hasCUDA()) v.push_back("torch:flat|device=cuda");
#ifdef SEMSKIP_WITH_KOKKOS
  v.push_back("kokkos:flat");
  v.push_back("kokkos:flat|chunk=33");
#endif
#ifdef SEMSKIP_WITH_FAISS
  v.push_back("faiss:Flat");
  v.push_back("faiss:IVF8,Flat|nprobe=8");
#endif
  return v;
}

TEST(CrossBackend, ExactBackendsAgree) {
  const int64_t n = 3000, nq = 64, k = 16;
  for (const std::string& data : {"clustered", "uniform"}) {
    const bool clustered = data == std::string("clustered");
    const std::vector<float> keys = clustered ? clustered_vectors(n, kDim, 11, 0) : uniform_vectors(n, kDim, 11, 0);
    const std::vector<float> queries = clustered ? clustered_vectors(nq, kDim, 11, 1) : uniform_vectors(nq, kDim, 11, 1);
    // Ids that are not row numbers, so a backend returning rows would be caught.
    std::vector<int64_t> ids(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = 7 * i + 3;
    test::Stored stored{kDim};
    stored.add(n, keys.data(), ids.data());

    std::vector<std::string> names;
    std::vector<std::vector<int64_t>> all_ids;
    std::vector<std::vector<float>> all_sims;
    for (const std::string& d : exact_descriptors()) {
      auto index = make_index(d, kDim);
      if (!index->is_trained()) index->train(n, keys.data());
      index->add(n, keys.data(), ids.data());
      std::vector<float> sims(nq * k);
      std::vector<int64_t> found(nq * k);
      index->search(nq, queries.data(), k, sims.data(), found.data());
      names.push_back(d);
      all_ids.push_back(found);
      all_sims.push_back(sims);
    }
    ASSERT_GE(names.size(), 2u);
    for (size_t a = 0; a < names.size(); ++a) {
      for (size_t b = a + 1; b < names.size(); ++b) {
        // b checked against a as the reference: same ids, similarities within 1e-5.
        test::Neighbours ref;
        ref.ids = all_ids[a];
        ref.sims.assign(all_sims[a].begin(), all_sims[a].end());
        test::expect_same_neighbours(stored, nq, queries.data(), k, ref, all_ids[b].data(),
                                     all_sims[b].data(), 1e-5,
                                     names[b] + " vs " + names[a] + " on " + data);
      }
    }
  }
}

}  // namespace
}  // namespace semskip
