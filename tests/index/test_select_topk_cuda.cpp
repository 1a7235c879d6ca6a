// The GPU row-wise top-k selection (index/cuda/select_topk.h), checked against a stable sort of
// the same scores on the CPU: the k largest by decreasing score, ties by lower column, bit for
// bit. Shapes cover one and many segments, reduction rounds, rows shorter than k, unaligned
// rows, many equal scores (the rounds of the candidate buffer) and chunked candidates.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "index/cuda/select_topk.h"

namespace semskip {
namespace {

at::ScalarType torch_type(cuda::ScoreType t) {
  if (t == cuda::ScoreType::f16) return at::kHalf;
  if (t == cuda::ScoreType::bf16) return at::kBFloat16;
  return at::kFloat;
}

// Expected: scores (CPU, float32 copy of the rounded values) sorted descending, stably.
std::tuple<at::Tensor, at::Tensor> reference(const at::Tensor& scores_cpu_f32, int64_t k) {
  auto sorted = scores_cpu_f32.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true);
  const int64_t found = std::min(k, scores_cpu_f32.size(1));
  return {std::get<0>(sorted).narrow(1, 0, found), std::get<1>(sorted).narrow(1, 0, found)};
}

void expect_selected(const at::Tensor& scores, int64_t k, const at::Tensor& got_scores,
                     const at::Tensor& got_cols, const std::string& what) {
  const at::Tensor s = scores.to(at::kCPU, at::kFloat);
  auto [want_scores, want_cols] = reference(s, k);
  const int64_t found = want_scores.size(1);
  const at::Tensor gs = got_scores.to(at::kCPU, at::kFloat);
  const at::Tensor gc = got_cols.to(at::kCPU);
  ASSERT_EQ(gs.size(1), k) << what;
  EXPECT_TRUE(at::equal(gs.narrow(1, 0, found), want_scores)) << what;
  EXPECT_TRUE(at::equal(gc.narrow(1, 0, found), want_cols)) << what;
  if (found < k) {
    EXPECT_TRUE(at::all(gs.narrow(1, found, k - found).isneginf()).item<bool>()) << what;
    EXPECT_TRUE(at::all(gc.narrow(1, found, k - found).eq(-1)).item<bool>()) << what;
  }
}

// scores: [n, ld] on the GPU, the first len columns used.
void check_topk(const at::Tensor& scores, int64_t len, int k, cuda::ScoreType type, const std::string& what) {
  const int64_t n = scores.size(0);
  const auto opts = scores.options();
  at::Tensor out_scores = at::empty({n, k}, opts);
  at::Tensor out_cols = at::empty({n, k}, opts.dtype(at::kLong));
  at::Tensor ws = at::empty({cuda::select_workspace_bytes(n, len, k)}, opts.dtype(at::kByte));
  ASSERT_EQ(cuda::select_topk(type, scores.data_ptr(), n, len, scores.size(1), k, nullptr, out_scores.data_ptr(),
                              out_cols.data_ptr<int64_t>(), ws.data_ptr(),
                              c10::cuda::getCurrentCUDAStream().stream()),
            cudaSuccess)
      << what;
  expect_selected(scores.narrow(1, 0, len), k, out_scores, out_cols, what);
}

class SelectTopkCuda : public ::testing::TestWithParam<cuda::ScoreType> {
 protected:
  void SetUp() override {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  }
  at::Tensor randn(int64_t n, int64_t m, uint64_t seed) const {
    at::manual_seed(seed);
    return at::randn({n, m}, at::TensorOptions().device(at::kCUDA)).to(torch_type(GetParam()));
  }
};

TEST_P(SelectTopkCuda, MatchesAStableSortAcrossShapes) {
  const struct {
    int64_t n, len;
    int k;
  } cases[] = {{3, 1, 1},       {5, 100, 10},    {4, 8192, 26},   {4, 8193, 26},  {2, 40000, 1},
               {7, 50000, 256}, {3, 20, 64},     {2, 1 << 20, 10}, {2, 300000, 256}};
  uint64_t seed = 1;
  for (const auto& c : cases) {
    const at::Tensor s = randn(c.n, c.len, seed++);
    check_topk(s, c.len, c.k, GetParam(), fmt::format("n={} len={} k={}", c.n, c.len, c.k));
  }
}

TEST_P(SelectTopkCuda, ManyEqualScoresTakeTheLowestColumns) {
  // Four distinct values: thousands of candidates pass the bound, more than one round holds.
  for (int k : {1, 26, 256}) {
    at::manual_seed(7);
    const at::Tensor s = at::randint(0, 4, {3, 30000}, at::TensorOptions().device(at::kCUDA))
                             .to(torch_type(GetParam()));
    check_topk(s, 30000, k, GetParam(), fmt::format("4 levels, k={}", k));
    const at::Tensor same = at::full({2, 9000}, 0.5, at::TensorOptions().device(at::kCUDA))
                                .to(torch_type(GetParam()));
    check_topk(same, 9000, k, GetParam(), fmt::format("all equal, k={}", k));
  }
}

TEST_P(SelectTopkCuda, UnalignedRowsAndPaddedStride) {
  // ld = len + 3: rows start off the 16-byte grid, so the scalar loads run.
  const at::Tensor wide = randn(5, 10003, 11);
  check_topk(wide, 10000, 12, GetParam(), "ld = len + 3");
  // ld a multiple of 8 with len below it (the padded stride torch:flat uses).
  const at::Tensor padded = randn(4, 10008, 12);
  check_topk(padded, 10001, 12, GetParam(), "ld = round_up(len, 8)");
}

TEST_P(SelectTopkCuda, ChunkedCandidatesThenFinishMatchOneSelection) {
  // Three chunks of a row's columns, each into its k candidate words, then the k best overall;
  // col_ids maps each column to an id (here 1000 + 3·column).
  const int64_t n = 6, len = 25000, chunk = 9000;
  const int k = 20;
  const at::Tensor s = randn(n, len, 21);
  const auto opts = s.options();
  const int64_t n_chunks = (len + chunk - 1) / chunk;
  const int64_t m = n_chunks * k;
  at::Tensor cand = at::empty({n, m}, opts.dtype(at::kLong));
  auto* words = reinterpret_cast<uint64_t*>(cand.data_ptr<int64_t>());
  at::Tensor ws = at::empty({std::max(cuda::select_workspace_bytes(n, chunk, k), cuda::finish_workspace_bytes(n, m, k))},
                            opts.dtype(at::kByte));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t start = c * chunk;
    const at::Tensor part = s.narrow(1, start, std::min(chunk, len - start)).contiguous();
    ASSERT_EQ(cuda::select_candidates(GetParam(), part.data_ptr(), n, part.size(1), part.size(1), k, start, words, m,
                                      c * k, ws.data_ptr(), stream),
              cudaSuccess);
  }
  const at::Tensor ids = at::arange(len, opts.dtype(at::kLong)) * 3 + 1000;
  at::Tensor out_scores = at::empty({n, k}, opts);
  at::Tensor out_ids = at::empty({n, k}, opts.dtype(at::kLong));
  ASSERT_EQ(cuda::select_finish(GetParam(), words, n, m, m, k, ids.data_ptr<int64_t>(), out_scores.data_ptr(),
                                out_ids.data_ptr<int64_t>(), ws.data_ptr(), stream),
            cudaSuccess);
  auto [want_scores, want_cols] = reference(s.to(at::kCPU, at::kFloat), k);
  EXPECT_TRUE(at::equal(out_scores.to(at::kCPU, at::kFloat), want_scores));
  EXPECT_TRUE(at::equal(out_ids.to(at::kCPU), want_cols * 3 + 1000));
}

TEST_P(SelectTopkCuda, RefusesKOutsideItsRange) {
  const at::Tensor s = randn(2, 100, 3);
  at::Tensor out = at::empty({2, 300}, s.options());
  at::Tensor cols = at::empty({2, 300}, s.options().dtype(at::kLong));
  at::Tensor ws = at::empty({cuda::select_workspace_bytes(2, 100, 300)}, s.options().dtype(at::kByte));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  for (int k : {0, cuda::kMaxSelect + 1})
    EXPECT_EQ(cuda::select_topk(GetParam(), s.data_ptr(), 2, 100, 100, k, nullptr, out.data_ptr(),
                                cols.data_ptr<int64_t>(), ws.data_ptr(), stream),
              cudaErrorInvalidValue);
}

INSTANTIATE_TEST_SUITE_P(Types, SelectTopkCuda,
                         ::testing::Values(cuda::ScoreType::f32, cuda::ScoreType::f16, cuda::ScoreType::bf16),
                         [](const auto& info) {
                           return info.param == cuda::ScoreType::f32   ? std::string("f32")
                                  : info.param == cuda::ScoreType::f16 ? std::string("f16")
                                                                       : std::string("bf16");
                         });

TEST(SelectTopkRescoreCuda, TheKBestOfTheCandidatesByWidenedKeys) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  // (keys, kc, k): one segment and several (the rescoring in select_finish's launch).
  const struct {
    int64_t n_keys;
    int kc, k;
  } cases[] = {{3000, 26, 10}, {3000, 7, 7}, {20000, 256, 200}, {20000, 26, 10}};
  for (at::ScalarType key_type : {at::kHalf, at::kBFloat16}) {
    // dim 896: 16-byte loads; dim 45: the scalar loop.
    for (int64_t dim : {int64_t{896}, int64_t{45}}) {
      for (const auto& c : cases) {
        at::manual_seed(dim + c.kc + c.n_keys);
        const int64_t n = 5;
        const int kc = c.kc, k = c.k;
        at::Tensor keys = at::randn({c.n_keys, dim}, cuda);
        keys = (keys / keys.norm(2, {1}, true)).to(key_type);
        at::Tensor queries = at::randn({n, dim}, cuda);
        queries = queries / queries.norm(2, {1}, true);
        const at::Tensor scores = at::mm(queries.to(key_type), keys.t());  // [n, n_keys]
        const at::Tensor ids = at::arange(c.n_keys, cuda.dtype(at::kLong)) * 7 + 3;
        at::Tensor sims = at::empty({n, k}, cuda);
        at::Tensor out_ids = at::empty({n, k}, cuda.dtype(at::kLong));
        at::Tensor ws = at::empty({cuda::select_workspace_bytes(n, c.n_keys, kc)}, cuda.dtype(at::kByte));
        cuda::Rescore r;
        r.keys = keys.data_ptr();
        r.dim = dim;
        r.queries = queries.data_ptr<float>();
        r.k = k;
        r.row_ids = ids.data_ptr<int64_t>();
        r.out_sims = sims.data_ptr<float>();
        r.out_ids = out_ids.data_ptr<int64_t>();
        const auto type = key_type == at::kHalf ? cuda::ScoreType::f16 : cuda::ScoreType::bf16;
        ASSERT_EQ(cuda::select_topk(type, scores.data_ptr(), n, c.n_keys, c.n_keys, kc, nullptr, nullptr, nullptr,
                                    ws.data_ptr(), c10::cuda::getCurrentCUDAStream().stream(), &r),
                  cudaSuccess);
        // The candidates: the kc best rounded scores (stable: lower column first among equal ones).
        const at::Tensor rows = std::get<1>(reference(scores.to(at::kCPU, at::kFloat), kc)).to(at::kCUDA);
        // float64 similarities of the widened keys: of every candidate, and of the rows returned.
        const auto exact_of = [&](const at::Tensor& rs) {
          return at::bmm(keys.index_select(0, rs.reshape({-1})).view({n, rs.size(1), dim}).to(at::kDouble),
                         queries.to(at::kDouble).unsqueeze(2))
              .squeeze(2);
        };
        const at::Tensor kth = std::get<0>(exact_of(rows).topk(k, 1, true, true)).select(1, k - 1);
        const at::Tensor returned = at::floor_divide(out_ids - 3, 7);  // rows of the results
        const at::Tensor exact = exact_of(returned);
        const std::string what =
            fmt::format("{} dim={} n_keys={} kc={} k={}", c10::toString(key_type), dim, c.n_keys, kc, k);
        // Each result is a distinct candidate of its query, with its float32 similarity.
        EXPECT_TRUE(at::all(rows.unsqueeze(2).eq(returned.unsqueeze(1)).any(1)).item<bool>()) << what;
        EXPECT_EQ(std::get<0>(at::_unique(returned.select(0, 0))).numel(), k) << what;
        EXPECT_TRUE(at::allclose(sims.to(at::kDouble), exact, 1e-5, 1e-5)) << what;
        // In decreasing order, and the k best: the last is no worse than the k-th best candidate
        // (up to float32 rounding).
        if (k > 1)
          EXPECT_TRUE(at::all(sims.narrow(1, 0, k - 1).ge(sims.narrow(1, 1, k - 1))).item<bool>()) << what;
        EXPECT_TRUE(at::all(exact.select(1, k - 1).ge(kth - 1e-5)).item<bool>()) << what;
      }
    }
  }
  // A rescoring k above the selection's, or fp32 keys, is refused.
  const at::Tensor s = at::randn({2, 100}, cuda).to(at::kHalf);
  at::Tensor ws = at::empty({cuda::select_workspace_bytes(2, 100, 8)}, cuda.dtype(at::kByte));
  cuda::Rescore r;
  r.k = 9;
  EXPECT_EQ(cuda::select_topk(cuda::ScoreType::f16, s.data_ptr(), 2, 100, 100, 8, nullptr, nullptr, nullptr,
                              ws.data_ptr(), c10::cuda::getCurrentCUDAStream().stream(), &r),
            cudaErrorInvalidValue);
  r.k = 4;
  EXPECT_EQ(cuda::select_topk(cuda::ScoreType::f32, s.data_ptr(), 2, 50, 50, 8, nullptr, nullptr, nullptr,
                              ws.data_ptr(), c10::cuda::getCurrentCUDAStream().stream(), &r),
            cudaErrorInvalidValue);
}

TEST(NormalizeRowsCuda, MatchesTheDivisionByTheNorm) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  at::manual_seed(5);
  at::Tensor x = at::randn({9, 896}, at::TensorOptions().device(at::kCUDA)) * 3;
  x[4].zero_();  // a zero row stays zero
  at::Tensor out = at::empty_like(x);
  at::Tensor half = at::empty(x.sizes(), x.options().dtype(at::kHalf));
  ASSERT_EQ(cuda::normalize_rows(x.data_ptr<float>(), 9, 896, out.data_ptr<float>(), cuda::ScoreType::f16,
                                 half.data_ptr(), c10::cuda::getCurrentCUDAStream().stream()),
            cudaSuccess);
  const at::Tensor want = x / x.norm(2, {1}, true).clamp_min(std::numeric_limits<float>::min());
  EXPECT_TRUE(at::allclose(out, want, 1e-6, 1e-7));
  EXPECT_TRUE(at::equal(half, out.to(at::kHalf)));
  EXPECT_TRUE(at::all(out[4].eq(0)).item<bool>());
}

}  // namespace
}  // namespace semskip
