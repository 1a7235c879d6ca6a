// torch:flat with fp16 / bf16 keys (index/torch_flat_index.h): the two-stage search, checked
// against a plain-loop reference over the rounded keys, and its grouped selection against the
// plain top-k of the same scores.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>

#include "index/index_factory.h"
#include "index/synthetic_vectors.h"
#include "index/torch_flat_index.h"
#include "index/vector_index.h"
#include "index_test_util.h"

namespace semskip {
namespace {

constexpr int64_t kDim = 48;

// Rows normalised as the index normalises them (vector_index.h), optionally rounded to bf16.
std::vector<float> unit_rows(const std::vector<float>& x, int64_t n, bool to_bf16) {
  std::vector<float> unit(x.size());
  l2_normalize_rows(n, kDim, x.data(), unit.data());
  if (!to_bf16) return unit;
  at::Tensor t = at::from_blob(unit.data(), {n, kDim}, at::kFloat).to(at::kBFloat16).to(at::kFloat).contiguous();
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + n * kDim);
}

struct Found {
  std::vector<float> sims;
  std::vector<int64_t> ids;
};

Found search(const std::string& descriptor, const std::vector<float>& keys, int64_t n,
             const std::vector<float>& queries, int64_t nq, int64_t k) {
  auto index = make_index(descriptor, kDim);
  index->add(n, keys.data(), test::iota_ids(n).data());
  Found f{std::vector<float>(nq * k), std::vector<int64_t>(nq * k)};
  index->search(nq, queries.data(), k, f.sims.data(), f.ids.data());
  return f;
}

TEST(TorchReducedPrecision, SimilaritiesAreExactForTheRoundedKeys) {
  const int64_t n = 6000, nq = 60, k = 10;
  const std::vector<float> keys = clustered_vectors(n, kDim, 11, 0);
  const std::vector<float> queries = clustered_vectors(nq, kDim, 11, 1);
  const Found f = search("torch:flat|dtype=bf16", keys, n, queries, nq, k);
  test::Stored rounded{kDim};
  const std::vector<float> r = unit_rows(keys, n, true);
  rounded.add(n, r.data(), test::iota_ids(n).data());
  // Reference: the stored keys ranked by their float64 inner product with the unit query
  // (what the index ranks by; the rounded keys are not renormalised).
  const std::vector<float> q_unit_ref = unit_rows(queries, nq, false);
  test::Neighbours ref;
  ref.ids.resize(nq * k);
  ref.sims.resize(nq * k);
  for (int64_t q = 0; q < nq; ++q) {
    std::vector<std::pair<double, int64_t>> scored(n);
    for (int64_t i = 0; i < n; ++i) {
      double dot = 0;
      for (int64_t j = 0; j < kDim; ++j) dot += static_cast<double>(q_unit_ref[q * kDim + j]) * r[i * kDim + j];
      scored[i] = {dot, i};
    }
    std::partial_sort(scored.begin(), scored.begin() + k, scored.end(), std::greater<>());
    for (int64_t j = 0; j < k; ++j) ref.ids[q * k + j] = scored[j].second, ref.sims[q * k + j] = scored[j].first;
  }
  // Every returned similarity is the float32 inner product of the unit query with the stored
  // (rounded) key, not a bf16 score (whose rounding is ~2e-3 here).
  const std::vector<float> q_unit = unit_rows(queries, nq, false);
  for (int64_t i = 0; i < nq * k; ++i) {
    const float* key = rounded.key_of(f.ids[i]);
    ASSERT_NE(key, nullptr);
    double dot = 0;
    for (int64_t j = 0; j < kDim; ++j) dot += static_cast<double>(q_unit[(i / k) * kDim + j]) * key[j];
    EXPECT_NEAR(f.sims[i], dot, 2e-6) << "result " << i;
  }
  // Against the reference over the same rounded keys: a neighbour is lost only where the
  // bf16 scores of stage 1 misrank it below the 26th candidate.
  EXPECT_GE(test::recall(ref, k, f.ids, k, nq, 10), 0.999);
  EXPECT_DOUBLE_EQ(test::recall(ref, k, f.ids, k, nq, 1), 1.0);
}

TEST(TorchReducedPrecision, GroupedSelectionLosesNothing) {
  // The same bf16 scores ranked by the full-width top-k (group=1) and through group maxima,
  // in one chunk and in many (chunks of 96 rows = 6 groups of 16; the last chunk partial).
  const int64_t n = 5000, nq = 40, k = 10;
  const std::vector<float> keys = clustered_vectors(n, kDim, 5, 0);
  const std::vector<float> queries = clustered_vectors(nq, kDim, 5, 1);
  const Found plain = search("torch:flat|dtype=bf16|group=1", keys, n, queries, nq, k);
  for (const char* d : {"torch:flat|dtype=bf16", "torch:flat|dtype=bf16|group=16|chunk=96",
                        "torch:flat|dtype=bf16|group=1024|chunk=2048"}) {
    const Found g = search(d, keys, n, queries, nq, k);
    int64_t differing = 0;
    for (int64_t i = 0; i < nq * k; ++i) {
      EXPECT_NEAR(g.sims[i], plain.sims[i], 1e-6) << d << " at " << i;
      differing += g.ids[i] != plain.ids[i];
    }
    EXPECT_LE(differing, 2) << d << ": only exact ties may swap";
  }
}

TEST(TorchReducedPrecision, ChunkRoundsToWholeGroupsAndStorageHalves) {
  TorchFlatIndex* t = nullptr;
  auto index = make_index("torch:flat|dtype=bf16|group=32|chunk=100", kDim);
  t = dynamic_cast<TorchFlatIndex*>(index.get());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->chunk(), 128);
  EXPECT_EQ(t->key_dtype(), at::kBFloat16);
  const std::vector<float> keys = clustered_vectors(1000, kDim, 1, 0);
  index->add(1000, keys.data(), test::iota_ids(1000).data());
  auto full = make_index("torch:flat", kDim);
  full->add(1000, keys.data(), test::iota_ids(1000).data());
  // Same capacity (1024 rows), half the key bytes.
  EXPECT_EQ(full->memory_bytes() - index->memory_bytes(), 1024 * kDim * 2);
}

TEST(TorchReducedPrecision, Fp16IsRefusedWhereLibTorchCannotMultiplyIt) {
  try {
    auto index = make_index("torch:flat|dtype=fp16", kDim);
    // This LibTorch multiplies fp16 on CPU: then it must search like bf16 does.
    const std::vector<float> keys = clustered_vectors(300, kDim, 2, 0);
    const Found f = search("torch:flat|dtype=fp16", keys, 300, keys, 5, 1);
    for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(f.ids[i], i);
  } catch (const Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), "cannot multiply");
    EXPECT_CONTAINS(std::string(e.what()), "torch:flat|dtype=fp16");
  }
}

}  // namespace
}  // namespace semskip
