// One conformance suite, run on every backend compiled in (docs/conventions.md rule 12). Exact
// backends must equal the brute-force reference; approximate ones must reach the recall
// stated in their case on clustered data.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>

#include "index/index_factory.h"
#include "index/synthetic_vectors.h"
#include "index_test_util.h"

namespace semskip {
namespace {

using test::brute_force;
using test::error_of;
using test::Stored;

constexpr int64_t kDim = 32;
constexpr double kTol = 1e-5;

struct BackendCase {
  std::string descriptor;
  bool exact = true;
  double min_recall_1 = 1.0;   // stated recall on clustered data: N=4000, d=32, 200 queries
  double min_recall_10 = 1.0;
  bool removable = true;
  // Queries that are a stored key or a small perturbation of one (FindsTheSourceKey): the
  // share whose first result is that key, and how far its similarity may be from the exact
  // cosine.
  double min_source_share = 1.0;
  double source_sim_tol = kTol;
  // |similarity| of a stored zero key to any query (ZeroKeyIsStoredAsZero): 0 where the
  // backend keeps the vectors; the score of the zero vector's code where it quantises.
  double zero_key_tol = 1e-6;
};

std::ostream& operator<<(std::ostream& os, const BackendCase& c) { return os << c.descriptor; }

std::vector<BackendCase> backend_cases() {
  std::vector<BackendCase> v = {
      {"torch:flat"},
      {"torch:flat|chunk=7"},  // many chunks: exercises the running top-k merge
      {"torch:flat|device=cuda"},
      // Reduced-precision keys: the similarities are exact for the rounded keys, so they
      // differ from float32 search by the rounding (bf16: 8 bits of mantissa, measured ≤ 2e-3
      // at d=32) and near-ties may swap; recall is stated, not exactness. group=4 and chunk=96
      // run the grouped stage 1 and the merge over chunks, group=1 the plain top-k.
      {"torch:flat|dtype=bf16", false, 0.97, 0.98, true, 1.0, 0.01, 1e-6},
      {"torch:flat|dtype=bf16|group=4|chunk=96", false, 0.97, 0.98, true, 1.0, 0.01, 1e-6},
      {"torch:flat|dtype=bf16|group=1|chunk=7", false, 0.97, 0.98, true, 1.0, 0.01, 1e-6},
      {"torch:flat|device=cuda|dtype=fp16", false, 0.99, 0.99, true, 1.0, 0.002, 1e-6},
      {"torch:flat|device=cuda|dtype=bf16", false, 0.97, 0.98, true, 1.0, 0.01, 1e-6},
  };
#ifdef SEMSKIP_WITH_KOKKOS
  v.push_back({"kokkos:flat"});
  v.push_back({"kokkos:flat|chunk=5"});
#endif
#ifdef SEMSKIP_WITH_FAISS
  v.push_back({"faiss:Flat"});
  v.push_back({"faiss:IVF16,Flat|nprobe=16"});  // every list probed: exact
  // Stated recall@1 / recall@10 (measured on this data with FAISS 1.7.3: IVF64 0.995/0.994,
  // IVF-SQ8 0.915/0.976, IVF-PQ8 0.335/0.785, HNSW16 1.0/1.0, SQ8 0.930/0.992, PQ8 0.255/0.800).
  // Product quantisation with 4-dim sub-vectors blurs close neighbours: low recall@1 is its
  // nature, not a defect.
  // Then: source share and similarity tolerance on stored / perturbed queries
  // (FindsTheSourceKey; measured: 1.0 and 2e-7 for IVF64 and HNSW16, 1.0 and 0.025 / 0.031
  // for IVF-SQ8 / SQ8, 0.905 / 0.915 and 0.23 for IVF-PQ8 / PQ8), and the zero key's score
  // (measured: 0 for IVF64 and HNSW16, 0.002 / 0.003 for IVF-SQ8 / SQ8, 0.12 / 0.08 for
  // IVF-PQ8 / PQ8). IVF-Flat and HNSW keep the vectors, so a found key scores its exact
  // cosine; SQ8 codes each coordinate in 8 bits of its trained range; PQ8 replaces every
  // 4-dim sub-vector by one of 256 centroids.
  v.push_back({"faiss:IVF64,Flat|nprobe=8", false, 0.95, 0.95, true, 0.97, kTol, 1e-6});
  v.push_back({"faiss:IVF32,SQ8|nprobe=8", false, 0.85, 0.93, true, 0.97, 0.05, 0.01});
  v.push_back({"faiss:IVF32,PQ8|nprobe=8", false, 0.25, 0.70, true, 0.85, 0.30, 0.20});
  v.push_back({"faiss:HNSW16|efSearch=64", false, 0.95, 0.95, false, 0.97, kTol, 1e-6});
  v.push_back({"faiss:SQ8", false, 0.85, 0.95, true, 0.97, 0.05, 0.01});
  v.push_back({"faiss:PQ8", false, 0.20, 0.70, true, 0.85, 0.30, 0.20});
#endif
#ifdef SEMSKIP_WITH_FAISS_GPU
  // FAISS GPU (compiled only in CUDA builds against a FAISS with GPU support): Flat and an
  // IVF probing every list are exact in float32; IVF64 with 8 probes is stated like its CPU
  // twin. Removal re-adds the remaining keys, so it must leave no trace either.
  v.push_back({"faiss-gpu:Flat"});
  v.push_back({"faiss-gpu:IVF16,Flat|nprobe=16"});
  v.push_back({"faiss-gpu:IVF64,Flat|nprobe=8", false, 0.95, 0.95, true, 0.97, kTol, 1e-6});
#endif
  return v;
}

std::string case_name(const testing::TestParamInfo<BackendCase>& info) {
  std::string s;
  for (char c : info.param.descriptor) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
}

class BackendConformance : public testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    if ((GetParam().descriptor.find("cuda") != std::string::npos ||
         GetParam().descriptor.rfind("faiss-gpu:", 0) == 0) && !at::hasCUDA())
      GTEST_SKIP() << "no CUDA device in this build/machine";
  }

  // The index of this case, trained (when it needs it) on clustered vectors of stream 2.
  std::unique_ptr<VectorIndex> make() const {
    std::unique_ptr<VectorIndex> index = make_index(GetParam().descriptor, kDim);
    if (!index->is_trained()) {
      const std::vector<float> train = clustered_vectors(kTrain, kDim, kSeed, 2);
      index->train(kTrain, train.data());
      EXPECT_TRUE(index->is_trained());
    }
    return index;
  }

  // Searches and returns ids; checks the invariants every backend keeps: ids unique per
  // query and stored, similarities descending, −1 only in the tail and with −inf.
  std::vector<int64_t> search_checked(const VectorIndex& index, const Stored& stored, int64_t nq,
                                      const float* queries, int64_t k,
                                      std::vector<float>* sims_out = nullptr) const {
    std::vector<float> sims(static_cast<size_t>(nq * k));
    std::vector<int64_t> ids(static_cast<size_t>(nq * k));
    index.search(nq, queries, k, sims.data(), ids.data());
    for (int64_t q = 0; q < nq; ++q) {
      bool tail = false;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t id = ids[q * k + j];
        const float s = sims[q * k + j];
        if (id < 0) {
          EXPECT_EQ(id, -1);
          EXPECT_TRUE(std::isinf(s) && s < 0) << "query " << q << " rank " << j;
          tail = true;
          continue;
        }
        EXPECT_FALSE(tail) << "a result after a −1 at query " << q;
        EXPECT_NE(stored.key_of(id), nullptr) << "id " << id << " is not stored";
        if (j > 0 && ids[q * k + j - 1] >= 0) EXPECT_GE(sims[q * k + j - 1], s - 1e-6f);
        for (int64_t i = 0; i < j; ++i) EXPECT_NE(ids[q * k + i], id) << "repeated id";
      }
    }
    if (sims_out) *sims_out = sims;
    return ids;
  }

  static constexpr uint64_t kSeed = 7;
  static constexpr int64_t kTrain = 2000;
};

TEST_P(BackendConformance, EmptyIndexHasNoResults) {
  auto index = make();
  EXPECT_EQ(index->size(), 0);
  EXPECT_EQ(index->dim(), kDim);
  const std::vector<float> q = clustered_vectors(3, kDim, kSeed, 1);
  Stored stored{kDim};
  const std::vector<int64_t> ids = search_checked(*index, stored, 3, q.data(), 4);
  for (int64_t id : ids) EXPECT_EQ(id, -1);
  if (GetParam().removable) {
    const int64_t missing[] = {3, 4};
    EXPECT_EQ(index->remove(2, missing), 0);
  }
}

TEST_P(BackendConformance, FewerKeysThanK) {
  auto index = make();
  Stored stored{kDim};
  const std::vector<float> keys = clustered_vectors(5, kDim, kSeed, 0);
  const std::vector<int64_t> ids = {40, 41, 42, 43, 44};
  index->add(5, keys.data(), ids.data());
  stored.add(5, keys.data(), ids.data());
  EXPECT_EQ(index->size(), 5);
  const int64_t nq = 4, k = 8;
  const std::vector<float> q = clustered_vectors(nq, kDim, kSeed, 1);
  std::vector<float> sims;
  const std::vector<int64_t> found = search_checked(*index, stored, nq, q.data(), k, &sims);
  if (GetParam().exact) {
    test::expect_same_neighbours(stored, nq, q.data(), k, brute_force(stored, nq, q.data(), k),
                                 found.data(), sims.data(), kTol, GetParam().descriptor);
  }
}

TEST_P(BackendConformance, AgreesWithBruteForceOrReachesStatedRecall) {
  auto index = make();
  const int64_t n = 4000, nq = 200, k = 10;
  const std::vector<float> keys = clustered_vectors(n, kDim, kSeed, 0);
  const std::vector<int64_t> ids = test::iota_ids(n, 100);
  index->add(n, keys.data(), ids.data());
  Stored stored{kDim};
  stored.add(n, keys.data(), ids.data());
  const std::vector<float> q = clustered_vectors(nq, kDim, kSeed, 1);
  std::vector<float> sims;
  const std::vector<int64_t> found = search_checked(*index, stored, nq, q.data(), k, &sims);
  const test::Neighbours ref = brute_force(stored, nq, q.data(), k);
  if (GetParam().exact) {
    test::expect_same_neighbours(stored, nq, q.data(), k, ref, found.data(), sims.data(), kTol,
                                 GetParam().descriptor);
  } else {
    const double r1 = test::recall(ref, k, found, k, nq, 1);
    const double r10 = test::recall(ref, k, found, k, nq, 10);
    EXPECT_GE(r1, GetParam().min_recall_1) << GetParam().descriptor;
    EXPECT_GE(r10, GetParam().min_recall_10) << GetParam().descriptor;
  }
}

TEST_P(BackendConformance, InterleavedAddRemoveSearch) {
  auto index = make();
  Stored stored{kDim};
  const int64_t k = 10, nq = 50;
  const std::vector<float> q = clustered_vectors(nq, kDim, kSeed, 1);
  const std::vector<float> a = clustered_vectors(600, kDim, kSeed, 0);
  const std::vector<int64_t> a_ids = test::iota_ids(600, 1000);
  index->add(600, a.data(), a_ids.data());
  stored.add(600, a.data(), a_ids.data());

  if (!GetParam().removable) {
    EXPECT_FALSE(index->supports_remove());
    const std::string msg = error_of([&] { index->remove(1, a_ids.data()); });
    EXPECT_CONTAINS(msg, "cannot remove");
    EXPECT_CONTAINS(msg, GetParam().descriptor);
    EXPECT_EQ(index->size(), 600);
    return;
  }
  EXPECT_TRUE(index->supports_remove());
  // Every third of the first 300, one repeated, plus ids never added.
  std::vector<int64_t> gone;
  for (int64_t i = 0; i < 300; i += 3) gone.push_back(1000 + i);
  std::vector<int64_t> request = gone;
  request.push_back(gone.front());
  request.push_back(77);
  request.push_back(999999);
  EXPECT_EQ(index->remove(static_cast<int64_t>(request.size()), request.data()), 100);
  for (int64_t id : gone) stored.remove(id);
  EXPECT_EQ(index->size(), 500);
  EXPECT_FALSE(index->contains(gone[3]));
  EXPECT_TRUE(index->contains(1001));

  // Exact: the brute-force answer over what is stored. Approximate: the answer of a fresh
  // index (same training) that was only ever given the keys stored now — removal leaves
  // no trace.
  auto check_against_reference = [&](const std::string& stage) {
    std::vector<float> sims;
    const std::vector<int64_t> found = search_checked(*index, stored, nq, q.data(), k, &sims);
    if (GetParam().exact) {
      test::expect_same_neighbours(stored, nq, q.data(), k, brute_force(stored, nq, q.data(), k),
                                   found.data(), sims.data(), kTol, GetParam().descriptor + " " + stage);
      return;
    }
    auto fresh = make();
    fresh->add(stored.size(), stored.keys.data(), stored.ids.data());
    std::vector<float> fresh_sims;
    const std::vector<int64_t> fresh_ids = search_checked(*fresh, stored, nq, q.data(), k, &fresh_sims);
    int64_t differing = 0;
    for (size_t i = 0; i < found.size(); ++i) {
      EXPECT_NEAR(sims[i], fresh_sims[i], kTol) << stage << " at " << i;
      // Entries with equal approximate scores may come in either order.
      if (found[i] != fresh_ids[i] && std::abs(sims[i] - fresh_sims[i]) > 1e-6f) ++differing;
    }
    EXPECT_EQ(differing, 0) << stage;
  };
  check_against_reference("after remove");

  // New keys, and a removed id coming back with a different vector.
  const std::vector<float> b = clustered_vectors(201, kDim, kSeed, 3);
  std::vector<int64_t> b_ids = test::iota_ids(200, 5000);
  b_ids.push_back(gone[0]);
  index->add(201, b.data(), b_ids.data());
  stored.add(201, b.data(), b_ids.data());
  EXPECT_EQ(index->size(), 701);
  check_against_reference("after re-add");

  // Remove everything: back to an empty index.
  EXPECT_EQ(index->remove(stored.size(), stored.ids.data()), 701);
  EXPECT_EQ(index->size(), 0);
  Stored empty{kDim};
  for (int64_t id : search_checked(*index, empty, nq, q.data(), k)) EXPECT_EQ(id, -1);
}

TEST_P(BackendConformance, RejectsBadIdsAndLeavesIndexUnchanged) {
  auto index = make();
  const std::vector<float> keys = clustered_vectors(3, kDim, kSeed, 0);
  const int64_t ids[] = {5, 6, 7};
  index->add(3, keys.data(), ids);
  const int64_t present[] = {8, 6};
  EXPECT_CONTAINS(error_of([&] { index->add(2, keys.data(), present); }), "id 6 is already present");
  const int64_t twice[] = {9, 9};
  EXPECT_CONTAINS(error_of([&] { index->add(2, keys.data(), twice); }), "appears twice");
  const int64_t negative[] = {-1};
  EXPECT_CONTAINS(error_of([&] { index->add(1, keys.data(), negative); }), "negative");
  EXPECT_CONTAINS(error_of([&] { index->add(1, keys.data(), negative); }), GetParam().descriptor);
  EXPECT_EQ(index->size(), 3);
  EXPECT_FALSE(index->contains(8));
  std::vector<float> sims(3);
  std::vector<int64_t> found(3);
  EXPECT_CONTAINS(error_of([&] { index->search(1, keys.data(), 0, sims.data(), found.data()); }),
                  "k must be ≥ 1");
}

TEST_P(BackendConformance, DimensionMismatchAndBadTensorsAreClearErrors) {
  auto index = make();
  const std::string& d = GetParam().descriptor;
  at::Tensor wide = at::randn({4, kDim + 1});
  at::Tensor ids = at::arange(4, at::kLong);
  std::string msg = error_of([&] { index->add(wide, ids); });
  EXPECT_CONTAINS(msg, "expected shape [n, 32], got [4, 33]");
  EXPECT_CONTAINS(msg, d);
  EXPECT_CONTAINS(error_of([&] { index->search(at::randn({2, kDim - 1}), 3); }),
                  "expected shape [n, 32], got [2, 31]");
  EXPECT_CONTAINS(error_of([&] { index->search(at::randn({kDim}), 3); }), "expected shape [n, 32]");
  EXPECT_CONTAINS(error_of([&] { index->add(at::ones({4, kDim}, at::kInt), ids); }),
                  "is not float32, bf16 or fp16");
  EXPECT_CONTAINS(error_of([&] { index->add(at::randn({4, kDim}), at::arange(3, at::kLong)); }),
                  "ids must be int64 [4]");
  EXPECT_EQ(index->size(), 0);
}

TEST_P(BackendConformance, HalfPrecisionInputsConvertOnEntry) {
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    auto index = make();
    const int64_t n = 300, nq = 20, k = 5;
    at::Tensor keys = at::from_blob(clustered_vectors(n, kDim, kSeed, 0).data(), {n, kDim}).clone();
    at::Tensor queries = at::from_blob(clustered_vectors(nq, kDim, kSeed, 1).data(), {nq, kDim}).clone();
    // What the index sees after conversion: the values rounded to dtype.
    at::Tensor keys_rounded = keys.to(dtype).to(at::kFloat).contiguous();
    at::Tensor queries_rounded = queries.to(dtype).to(at::kFloat).contiguous();
    index->add(keys.to(dtype), at::arange(n, at::kLong));
    SearchResult r = index->search(queries.to(dtype), k);
    ASSERT_EQ(r.similarities.scalar_type(), at::kFloat);
    ASSERT_EQ(r.ids.sizes(), (std::vector<int64_t>{nq, k}));

    Stored stored{kDim};
    const std::vector<int64_t> ids = test::iota_ids(n);
    stored.add(n, keys_rounded.data_ptr<float>(), ids.data());
    at::Tensor sims = r.similarities.contiguous();
    at::Tensor found = r.ids.contiguous();
    if (GetParam().exact) {
      test::expect_same_neighbours(stored, nq, queries_rounded.data_ptr<float>(), k,
                                   brute_force(stored, nq, queries_rounded.data_ptr<float>(), k),
                                   found.data_ptr<int64_t>(), sims.data_ptr<float>(), kTol,
                                   GetParam().descriptor + " " + c10::toString(dtype));
    } else {
      // Same index, float32 raw API on the rounded values: the same answer.
      std::vector<float> raw_sims(nq * k);
      std::vector<int64_t> raw_ids(nq * k);
      index->search(nq, queries_rounded.data_ptr<float>(), k, raw_sims.data(), raw_ids.data());
      for (int64_t i = 0; i < nq * k; ++i) {
        EXPECT_EQ(found.data_ptr<int64_t>()[i], raw_ids[i]);
        EXPECT_NEAR(sims.data_ptr<float>()[i], raw_sims[i], kTol);
      }
    }
  }
}

TEST_P(BackendConformance, NormalisesKeysAndQueriesOnEntry) {
  auto index = make();
  const int64_t n = 200, nq = 40, k = 5;
  std::vector<float> keys = clustered_vectors(n, kDim, kSeed, 0);
  index->add(n, keys.data(), test::iota_ids(n).data());
  // Queries: stored keys 0, 5, 10, …; the same scaled by 3.7 and by 0.01 must give the same
  // answer, ids and similarities (normalised on entry, so no backend sees the scale).
  std::vector<float> q;
  for (int64_t i = 0; i < nq; ++i) q.insert(q.end(), keys.begin() + 5 * i * kDim, keys.begin() + (5 * i + 1) * kDim);
  std::vector<float> sims(nq * k), sims_scaled(nq * k);
  std::vector<int64_t> ids(nq * k), ids_scaled(nq * k);
  index->search(nq, q.data(), k, sims.data(), ids.data());
  for (float scale : {3.7f, 0.01f}) {
    std::vector<float> qs = q;
    for (float& v : qs) v *= scale;
    index->search(nq, qs.data(), k, sims_scaled.data(), ids_scaled.data());
    for (int64_t i = 0; i < nq * k; ++i) {
      EXPECT_NEAR(sims_scaled[i], sims[i], kTol) << "scale " << scale << " at " << i;
      // Equal ids, except for keys whose scores tie.
      if (ids_scaled[i] != ids[i]) {
        EXPECT_NEAR(sims_scaled[i], sims[i], 1e-6) << "scale " << scale << " at " << i;
      }
    }
    // Never the raw inner product: no similarity above 1 (beyond the quantisation error).
    for (float s : sims_scaled) EXPECT_LE(s, 1.0 + GetParam().source_sim_tol) << "scale " << scale;
  }
  if (GetParam().exact) {
    for (int64_t i = 0; i < nq; ++i) {
      EXPECT_EQ(ids[i * k], 5 * i);
      EXPECT_NEAR(sims[i * k], 1.0, kTol);
    }
  }
}

// Well-separated data with a known answer: 2000 clustered keys (pairs within a cluster are at
// cosine ≈ 0.8); queries are 100 stored keys and 100 stored keys plus noise of norm ≈ 0.05
// (cosine ≈ 0.999 to their source). Every query's true nearest key is its source, by a margin.
TEST_P(BackendConformance, FindsTheSourceKeyOfStoredAndPerturbedQueries) {
  auto index = make();
  const int64_t n = 2000, nq = 200, k = 3;
  const std::vector<float> keys = clustered_vectors(n, kDim, kSeed, 0);
  const std::vector<int64_t> ids = test::iota_ids(n, 100);
  index->add(n, keys.data(), ids.data());
  Stored stored{kDim};
  stored.add(n, keys.data(), ids.data());
  std::vector<float> q;
  std::vector<int64_t> source;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> noise(0.0f, 0.05f / std::sqrt(static_cast<float>(kDim)));
  for (int64_t i = 0; i < nq; ++i) {
    const int64_t row = (i * 37) % n;
    source.push_back(ids[row]);
    for (int64_t j = 0; j < kDim; ++j) q.push_back(keys[row * kDim + j] + (i >= nq / 2 ? noise(rng) : 0.0f));
  }
  const test::Neighbours ref = brute_force(stored, nq, q.data(), k);
  for (int64_t i = 0; i < nq; ++i) {  // the data's promise
    ASSERT_EQ(ref.ids[i * k], source[i]) << "query " << i;
    ASSERT_GT(ref.sims[i * k] - ref.sims[i * k + 1], 0.05) << "query " << i;
  }
  std::vector<float> sims;
  const std::vector<int64_t> found = search_checked(*index, stored, nq, q.data(), k, &sims);
  int64_t right = 0;
  double worst = 0;
  for (int64_t i = 0; i < nq; ++i) {
    if (found[i * k] != source[i]) continue;
    ++right;
    const double err = std::abs(sims[i * k] - ref.sims[i * k]);
    worst = std::max(worst, err);
    EXPECT_LE(err, GetParam().source_sim_tol) << "query " << i;
  }
  const double share = static_cast<double>(right) / nq;
  EXPECT_GE(share, GetParam().min_source_share) << GetParam().descriptor;
  RecordProperty("source_share", std::to_string(share));
  RecordProperty("source_sim_err", std::to_string(worst));
  std::cout << GetParam().descriptor << ": source share " << share << ", worst similarity error " << worst << "\n";
}

// Zero vectors. Keys and queries are normalised on entry and a zero vector stays zero, so a
// zero query has inner product 0 with every stored code: on an index with at least k keys
// every backend returns k stored ids, each at similarity 0. (Which ids is unspecified: all tie.)
TEST_P(BackendConformance, ZeroQueryScoresZeroAgainstEveryKey) {
  auto index = make();
  const int64_t n = 2000, k = 5;
  const std::vector<float> keys = clustered_vectors(n, kDim, kSeed, 0);
  index->add(n, keys.data(), test::iota_ids(n).data());
  Stored stored{kDim};
  stored.add(n, keys.data(), test::iota_ids(n).data());
  const std::vector<float> zero(2 * kDim, 0.0f);
  std::vector<float> sims;
  const std::vector<int64_t> found = search_checked(*index, stored, 2, zero.data(), k, &sims);
  for (int64_t i = 0; i < 2 * k; ++i) {
    EXPECT_GE(found[i], 0) << GetParam().descriptor << " result " << i;
    EXPECT_EQ(sims[i], 0.0f) << GetParam().descriptor << " result " << i;
  }
  // The tensor API agrees.
  SearchResult r = index->search(at::zeros({1, kDim}), k);
  for (int64_t j = 0; j < k; ++j) {
    EXPECT_GE(r.ids[0][j].item<int64_t>(), 0);
    EXPECT_EQ(r.similarities[0][j].item<float>(), 0.0f);
  }
}

// A zero key is stored (no refusal) and stays zero: backends that keep the vectors (flat,
// IVF-Flat, HNSW) score it exactly 0 against every query; quantisers store the code nearest
// to the zero vector and score that code, within the case's zero_key_tol. An exhaustive
// search (k = size) finds it from every query on exact backends; IVF finds it only from
// queries that probe the list it was assigned to, so at least one query must see it.
TEST_P(BackendConformance, ZeroKeyIsStoredAsZero) {
  auto index = make();
  const int64_t n = 20;
  std::vector<float> keys = clustered_vectors(n, kDim, kSeed, 0);
  std::fill(keys.begin() + 7 * kDim, keys.begin() + 8 * kDim, 0.0f);  // id 7 is the zero key
  index->add(n, keys.data(), test::iota_ids(n).data());
  Stored stored{kDim};
  stored.add(n, keys.data(), test::iota_ids(n).data());
  EXPECT_EQ(index->size(), n);
  EXPECT_TRUE(index->contains(7));
  const int64_t nq = 30;
  const std::vector<float> q = clustered_vectors(nq, kDim, kSeed, 1);
  std::vector<float> sims;
  const std::vector<int64_t> found = search_checked(*index, stored, nq, q.data(), n, &sims);
  int64_t seen = 0;
  double worst = 0;
  for (int64_t i = 0; i < nq * n; ++i) {
    if (found[i] != 7) continue;
    ++seen;
    worst = std::max(worst, static_cast<double>(std::abs(sims[i])));
  }
  std::cout << GetParam().descriptor << ": zero key seen by " << seen << " of " << nq << " queries, |sim| ≤ " << worst << "\n";
  EXPECT_GE(seen, 1) << GetParam().descriptor;
  EXPECT_LE(worst, GetParam().zero_key_tol) << GetParam().descriptor;
  if (GetParam().exact) EXPECT_EQ(seen, nq) << GetParam().descriptor;
  // It can be removed like any key.
  if (GetParam().removable) {
    const int64_t id = 7;
    EXPECT_EQ(index->remove(1, &id), 1);
    EXPECT_FALSE(index->contains(7));
  }
}

TEST_P(BackendConformance, DescriptorRoundTrips) {
  auto index = make();
  EXPECT_EQ(index->describe(), GetParam().descriptor);
  EXPECT_EQ(make_index(index->describe(), kDim)->describe(), GetParam().descriptor);
}

TEST_P(BackendConformance, MemoryGrowsWithKeys) {
  auto index = make();
  const int64_t empty_bytes = index->memory_bytes();
  const int64_t n = 2000;
  const std::vector<float> keys = clustered_vectors(n, kDim, kSeed, 0);
  index->add(n, keys.data(), test::iota_ids(n).data());
  const int64_t bytes = index->memory_bytes();
  EXPECT_GT(bytes, empty_bytes);
  // At least one byte per dimension per key, and ids of 8 bytes: no backend stores less.
  EXPECT_GE(bytes - empty_bytes, n * (kDim / 4 + 8)) << GetParam().descriptor;
  if (GetParam().exact) EXPECT_GE(bytes, n * kDim * 4);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendConformance, testing::ValuesIn(backend_cases()),
                         case_name);

}  // namespace
}  // namespace semskip
