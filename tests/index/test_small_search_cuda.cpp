// The one-launch first stage of small half-precision GPU searches (index/cuda/small_search.h).
//
// Its tensor-core scores are checked bit for bit on data whose dot products are exact in every
// precision involved (entries multiples of 1/8 and 1/4, so the float32 accumulation order of
// the tensor cores cannot matter): the candidates it keeps, reduced by select_finish, must be
// a stable sort of the exact scores (ties by lower row: the data tie a lot), across tile and
// query-group boundaries, rows shorter than k, and padding rows full of NaN that must never be
// selected. Through the index, the two-launch search must return what the matmul path
// (fused=0: cuBLAS scores, the selection kernel) returns: the same ids and similarities on
// exact data, the same neighbours up to near-ties on random data, after removals too.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "index/cuda/select_topk.h"
#include "index/cuda/small_search.h"
#include "index/index_factory.h"
#include "index/vector_index.h"

namespace semskip {
namespace {

at::ScalarType torch_type(cuda::ScoreType t) { return t == cuda::ScoreType::f16 ? at::kHalf : at::kBFloat16; }

// Queries: 16 entries ±1/2 at distinct random positions (norm exactly 2, so the normalised
// query is the row / 2, exactly). Keys: entries in {−4, …, 4} / 8. Scores are multiples of
// 1/64 below 1 in magnitude: exact in fp16, bf16 and float32.
at::Tensor exact_queries(int64_t n, int64_t dim, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor q = at::zeros({n, dim});
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor pos = at::randperm(dim, at::kLong).narrow(0, 0, 16);
    const at::Tensor sign = at::randint(0, 2, {16}).mul(2).sub(1).to(at::kFloat).mul(0.5);
    q[i].index_copy_(0, pos, sign);
  }
  return q;
}

at::Tensor exact_keys(int64_t n, int64_t dim, uint64_t seed) {
  at::manual_seed(seed);
  return at::randint(-4, 5, {n, dim}).to(at::kFloat).div(8);
}

class SmallSearchCuda : public ::testing::TestWithParam<cuda::ScoreType> {
 protected:
  void SetUp() override {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(SmallSearchCuda, CandidatesReduceToAStableSortOfTheExactScores) {
  const cuda::ScoreType type = GetParam();
  const auto gpu = at::TensorOptions().device(at::kCUDA);
  const struct {
    int64_t n, n_keys, dim;
    int k;
  } shapes[] = {{1, 1, 16, 1},     {3, 15, 16, 5},      {16, 16, 32, 10},    {17, 17, 48, 26},
                {5, 127, 64, 26},  {33, 128, 256, 26},  {16, 129, 256, 26},  {128, 1000, 256, 26},
                {128, 16384, 256, 26}, {7, 20000, 1024, 26}, {2, 300, 64, 32}, {40, 5000, 96, 32},
                {200, 40000, 64, 17}, {130, 3000, 32, 32}};
  for (const auto& s : shapes) {
    const std::string what = fmt::format("n={} keys={} dim={} k={}", s.n, s.n_keys, s.dim, s.k);
    const at::Tensor q = exact_queries(s.n, s.dim, 7 + s.n_keys);
    const at::Tensor keys = exact_keys(s.n_keys, s.dim, 11 + s.n);
    // The rows past n_keys up to a whole 16 are read by the kernel and must not be selected.
    const int64_t padded = (s.n_keys + 15) / 16 * 16;
    at::Tensor keys_dev = at::full({padded, s.dim}, NAN, gpu.dtype(torch_type(type)));
    keys_dev.narrow(0, 0, s.n_keys).copy_(keys);
    const at::Tensor q_dev = q.to(at::kCUDA);
    const int64_t m = cuda::small_candidate_width(s.n_keys, s.n, s.k);
    at::Tensor cand = at::empty({s.n, m}, gpu.dtype(at::kLong));
    at::Tensor unit = at::empty({s.n, s.dim}, gpu);
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
    ASSERT_EQ(cuda::small_candidates(type, q_dev.data_ptr<float>(), s.n, s.dim, keys_dev.data_ptr(), s.n_keys, s.k,
                                     unit.data_ptr<float>(), reinterpret_cast<uint64_t*>(cand.data_ptr<int64_t>()),
                                     stream),
              cudaSuccess)
        << what;
    at::Tensor out_scores = at::empty({s.n, s.k}, gpu.dtype(torch_type(type)));
    at::Tensor out_cols = at::empty({s.n, s.k}, gpu.dtype(at::kLong));
    at::Tensor ws = at::empty({cuda::finish_workspace_bytes(s.n, m, s.k)}, gpu.dtype(at::kByte));
    ASSERT_EQ(cuda::select_finish(type, reinterpret_cast<const uint64_t*>(cand.data_ptr<int64_t>()), s.n, m, m, s.k,
                                  nullptr, out_scores.data_ptr(), out_cols.data_ptr<int64_t>(), ws.data_ptr(), stream),
              cudaSuccess)
        << what;
    // The normalised queries, for the rescoring: the row / 2, exactly.
    EXPECT_TRUE(at::equal(unit.cpu(), q.div(2))) << what;
    const at::Tensor exact = at::mm(q.div(2).to(at::kDouble), keys.to(at::kDouble).t()).to(at::kFloat);
    auto sorted = exact.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true);
    const int64_t found = std::min<int64_t>(s.k, s.n_keys);
    const at::Tensor got_scores = out_scores.to(at::kCPU, at::kFloat);
    const at::Tensor got_cols = out_cols.cpu();
    EXPECT_TRUE(at::equal(got_scores.narrow(1, 0, found), std::get<0>(sorted).narrow(1, 0, found))) << what;
    EXPECT_TRUE(at::equal(got_cols.narrow(1, 0, found), std::get<1>(sorted).narrow(1, 0, found))) << what;
    if (found < s.k) {
      EXPECT_TRUE(at::all(got_cols.narrow(1, found, s.k - found).eq(-1)).item<bool>()) << what;
      EXPECT_TRUE(at::all(got_scores.narrow(1, found, s.k - found).isneginf()).item<bool>()) << what;
    }
  }
}

TEST_P(SmallSearchCuda, RefusesWhatItDoesNotTake) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  const cuda::ScoreType type = GetParam();
  EXPECT_EQ(cuda::small_candidates(type, nullptr, 1, 24, nullptr, 1, 1, nullptr, nullptr, stream),
            cudaErrorInvalidValue);  // dim not a multiple of 16
  EXPECT_EQ(cuda::small_candidates(type, nullptr, 1, 2048, nullptr, 1, 1, nullptr, nullptr, stream),
            cudaErrorInvalidValue);  // dim above kSmallMaxDim
  EXPECT_EQ(cuda::small_candidates(type, nullptr, 1, 64, nullptr, 1, 0, nullptr, nullptr, stream),
            cudaErrorInvalidValue);  // k = 0
  EXPECT_EQ(cuda::small_candidates(type, nullptr, 1, 64, nullptr, 1, 33, nullptr, nullptr, stream),
            cudaErrorInvalidValue);  // k above kSmallMaxTake
  EXPECT_EQ(cuda::small_candidates(cuda::ScoreType::f32, nullptr, 1, 64, nullptr, 1, 1, nullptr, nullptr, stream),
            cudaErrorInvalidValue);
  EXPECT_FALSE(cuda::small_search_fits(cuda::ScoreType::f32, 64, 10));
  EXPECT_TRUE(cuda::small_search_fits(type, 1024, 32));
  // Slices of one tile (128 keys) while there are fewer than 256 (tile, query group) pairs,
  // then wider: 128 tiles × 8 groups / 256 = 4 tiles per slice; at most 16.
  EXPECT_EQ(cuda::small_candidate_width(129, 1, 26), 2 * 26);
  EXPECT_EQ(cuda::small_candidate_width(16384, 128, 26), 32 * 26);
  EXPECT_EQ(cuda::small_candidate_width(40000, 200, 17), 21 * 17);   // 313 tiles × 13 groups: 15 per slice
  EXPECT_EQ(cuda::small_candidate_width(1 << 20, 4096, 10), 512 * 10);  // 16 per slice
}

INSTANTIATE_TEST_SUITE_P(Types, SmallSearchCuda, ::testing::Values(cuda::ScoreType::f16, cuda::ScoreType::bf16),
                         [](const auto& info) { return info.param == cuda::ScoreType::f16 ? "fp16" : "bf16"; });

// The index's two-launch search (fused=1: wherever it fits) against its matmul path (fused=0),
// same keys, same queries.
struct Pair {
  std::unique_ptr<VectorIndex> fused, matmul;
};

Pair make_pair(const std::string& dtype, int64_t dim) {
  return {make_index(fmt::format("torch:flat|device=cuda|dtype={}|fused=1", dtype), dim),
          make_index(fmt::format("torch:flat|device=cuda|dtype={}|fused=0", dtype), dim)};
}

void add_both(Pair& p, const at::Tensor& keys, int64_t first_id) {
  const at::Tensor ids = at::arange(first_id, first_id + keys.size(0), at::kLong);
  p.fused->add(keys.to(at::kCUDA), ids);
  p.matmul->add(keys.to(at::kCUDA), ids);
}

TEST(SmallSearchIndexCuda, SameResultsAsTheMatmulPathOnExactData) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  for (const std::string dtype : {"fp16", "bf16"}) {
    const int64_t dim = 64;
    Pair p = make_pair(dtype, dim);
    // Keys: 16 entries ±1/4 (norm 1, stored exactly), so similarities are multiples of 1/32.
    at::manual_seed(5);
    at::Tensor keys = exact_queries(3000, dim, 5).div(2);
    add_both(p, keys, 100);
    // Remove a scattered third: the last rows move into the holes.
    const at::Tensor gone = at::arange(100, 3100, 3, at::kLong);
    EXPECT_EQ(p.fused->remove(gone), gone.size(0));
    EXPECT_EQ(p.matmul->remove(gone), gone.size(0));
    add_both(p, exact_queries(700, dim, 6).div(2), 5000);
    const at::Tensor q = exact_queries(50, dim, 8).to(at::kCUDA);
    for (const int64_t k : {1, 10, 16}) {  // k' = k + 16 ≤ 32: the two-launch path
      const SearchResult a = p.fused->search(q, k);
      const SearchResult b = p.matmul->search(q, k);
      EXPECT_TRUE(a.ids.is_cuda()) << dtype;
      EXPECT_TRUE(at::equal(a.ids.cpu(), b.ids.cpu())) << dtype << " k=" << k;
      EXPECT_TRUE(at::equal(a.similarities.cpu(), b.similarities.cpu())) << dtype << " k=" << k;
    }
  }
}

TEST(SmallSearchIndexCuda, SameNeighboursAsTheMatmulPathOnRandomData) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  for (const std::string dtype : {"fp16", "bf16"}) {
    for (const int64_t dim : {64, 256, 1024}) {
      Pair p = make_pair(dtype, dim);
      at::manual_seed(dim);
      const at::Tensor keys = at::randn({16384, dim});
      add_both(p, keys, 0);
      const at::Tensor q = at::randn({128, dim}).to(at::kCUDA);
      const SearchResult a = p.fused->search(q, 10);
      const SearchResult b = p.matmul->search(q, 10);
      const at::Tensor same = a.ids.eq(b.ids).cpu();
      // Both rescore their candidates in float32, so where they agree on a neighbour they
      // agree on its similarity; they may differ only where stage-1 scores tie or round apart.
      EXPECT_GE(same.to(at::kFloat).mean().item<double>(), 0.995) << dtype << " dim=" << dim;
      const at::Tensor diff = (a.similarities - b.similarities).abs().masked_select(same.to(at::kCUDA));
      EXPECT_LE(diff.max().item<float>(), 1e-6f) << dtype << " dim=" << dim;
      // And the best similarity of each query is the exact one within the keys' rounding.
      const at::Tensor keys_unit = keys / keys.norm(2, {1}, true);
      const at::Tensor q_unit = q.cpu() / q.cpu().norm(2, {1}, true);
      const at::Tensor best = std::get<0>(at::mm(q_unit, keys_unit.t()).max(1));
      EXPECT_LE((a.similarities.select(1, 0).cpu() - best).abs().max().item<float>(), dtype == "fp16" ? 2e-3f : 1e-2f)
          << dtype << " dim=" << dim;
    }
  }
}

}  // namespace
}  // namespace semskip
