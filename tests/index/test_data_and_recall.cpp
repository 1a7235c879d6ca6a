// The pieces index-bench stands on: .npy files, synthetic vectors, the float64 reference
// search, recall@k and the derived timing figures.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "index/exact_search.h"
#include "index/index_benchmark.h"
#include "index/npy_file.h"
#include "index/recall.h"
#include "index/synthetic_vectors.h"
#include "index_test_util.h"

namespace semskip {
namespace {

std::string temp_path(const std::string& name) {
  return std::string(SEMSKIP_BINARY_DIR) + "/test_index_" + name;
}

// A .npy file written byte by byte from the format description, not by our writer.
void write_raw(const std::string& path, const std::string& header, const std::string& payload) {
  std::string h = header;
  while ((10 + h.size() + 1) % 64) h.push_back(' ');
  h.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(h.size() & 0xff));
  out.put(static_cast<char>(h.size() >> 8));
  out << h << payload;
}

TEST(NpyFile, ReadsHandWrittenFloat64AndRoundTripsFloat32) {
  const std::string f8 = temp_path("f8.npy");
  const double values[6] = {1.5, -2, 3.25, 0, 1e-3, 7};
  write_raw(f8, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
            std::string(reinterpret_cast<const char*>(values), sizeof(values)));
  NpyMatrix m = read_npy_matrix(f8);
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.cols, 3);
  ASSERT_EQ(m.data.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(m.data[i], static_cast<float>(values[i]));

  const std::string f4 = temp_path("f4.npy");
  const std::vector<float> x = uniform_vectors(5, 7, 1, 0);
  write_npy_matrix(f4, 5, 7, x.data());
  NpyMatrix back = read_npy_matrix(f4);
  EXPECT_EQ(back.rows, 5);
  EXPECT_EQ(back.cols, 7);
  EXPECT_EQ(back.data, x);
  std::remove(f8.c_str());
  std::remove(f4.c_str());
}

TEST(NpyFile, RejectsWhatItCannotRead) {
  const std::string p = temp_path("bad.npy");
  const std::string payload(64, '\0');
  struct Bad {
    std::string header, phrase;
  };
  for (const Bad& b : std::vector<Bad>{
           {"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", "dtype '<i4' is not supported"},
           {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", "dtype '>f4' is not supported"},
           {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", "Fortran-ordered"},
           {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", "not 2-D"},
           {"{'descr': '<f4', 'fortran_order': False, 'shape': (8,), }", "not 2-D"},
           {"{'descr': '<f4', 'fortran_order': False, 'shape': (100, 2), }", "shorter than"},
       }) {
    write_raw(p, b.header, payload);
    const std::string msg = test::error_of([&] { read_npy_matrix(p); });
    EXPECT_CONTAINS(msg, b.phrase);
    EXPECT_CONTAINS(msg, p);
  }
  std::ofstream(p) << "not numpy";
  EXPECT_CONTAINS(test::error_of([&] { read_npy_matrix(p); }), "not a .npy file");
  std::remove(p.c_str());
}

TEST(SyntheticVectors, ReproducibleAndClustered) {
  EXPECT_EQ(clustered_vectors(50, 8, 3, 0), clustered_vectors(50, 8, 3, 0));
  EXPECT_NE(clustered_vectors(50, 8, 3, 0), clustered_vectors(50, 8, 3, 1));
  EXPECT_NE(uniform_vectors(50, 8, 3, 0), uniform_vectors(50, 8, 4, 0));
  // Queries of clustered data sit near keys of their cluster; uniform ones do not.
  const int64_t d = 32, n = 2000, nq = 100;
  auto mean_best = [&](const std::vector<float>& keys, const std::vector<float>& q) {
    test::Stored s{d};
    s.add(n, keys.data(), test::iota_ids(n).data());
    const test::Neighbours nn = test::brute_force(s, nq, q.data(), 1);
    double sum = 0;
    for (double v : nn.sims) sum += v;
    return sum / nq;
  };
  const ClusterSpec spec{16, 0.3};
  const double clustered = mean_best(clustered_vectors(n, d, 9, 0, spec), clustered_vectors(nq, d, 9, 1, spec));
  const double uniform = mean_best(uniform_vectors(n, d, 9, 0), uniform_vectors(nq, d, 9, 1));
  EXPECT_GT(clustered, 0.9);
  EXPECT_LT(uniform, 0.7);
}

TEST(ExactSearch, MatchesPlainLoops) {
  const int64_t d = 13, n = 40000, nq = 9, k = 7;  // more keys than one block
  const std::vector<float> keys = uniform_vectors(n, d, 2, 0);
  const std::vector<float> q = uniform_vectors(nq, d, 2, 1);
  std::vector<int64_t> rows(nq * k);
  std::vector<double> sims(nq * k);
  exact_search(n, keys.data(), nq, q.data(), d, k, rows.data(), sims.data());
  test::Stored s{d};
  s.add(n, keys.data(), test::iota_ids(n).data());
  const test::Neighbours ref = test::brute_force(s, nq, q.data(), k);
  EXPECT_EQ(rows, ref.ids);
  for (size_t i = 0; i < sims.size(); ++i) EXPECT_NEAR(sims[i], ref.sims[i], 1e-12);
  // Fewer keys than k: the tail is −1.
  std::vector<int64_t> few(2 * 4);
  exact_search(3, keys.data(), 2, q.data(), d, 4, few.data());
  EXPECT_EQ(few[3], -1);
  EXPECT_EQ(few[7], -1);
  EXPECT_GE(few[0], 0);
}

TEST(Recall, ByHand) {
  // Query 0 finds 2 of its 3 true neighbours, query 1 finds all 3: (2/3 + 1) / 2.
  const int64_t found[] = {5, 9, 1, /**/ 4, 3, 2};
  const int64_t truth[] = {1, 5, 7, /**/ 2, 3, 4};
  EXPECT_DOUBLE_EQ(recall_at_k(2, 3, found, 3, truth, 3), (2.0 / 3 + 1) / 2);
  // recall@1 uses the first column of each: query 0 misses (5 vs 1), query 1 misses (4 vs 2).
  EXPECT_DOUBLE_EQ(recall_at_k(2, 1, found, 3, truth, 3), 0.0);
  // −1 never matches; a query with fewer true neighbours is scored against those it has.
  const int64_t found2[] = {8, -1};
  const int64_t truth2[] = {8, -1};
  EXPECT_DOUBLE_EQ(recall_at_k(1, 2, found2, 2, truth2, 2), 1.0);
  EXPECT_THROW(recall_at_k(1, 3, found2, 2, truth2, 2), Error);
}

TEST(SearchFigures, DerivedFromRawSamplesByHand) {
  // Sorted: 1, 2, 3, 4 ms. Median 2.5 ms → 32 / 0.0025 = 12800 queries/s.
  const SearchFigures f = derive_search_figures({0.004, 0.001, 0.002, 0.003}, 32);
  EXPECT_DOUBLE_EQ(f.queries_per_s, 12800.0);
  EXPECT_DOUBLE_EQ(f.latency_mean_s, 0.0025);
  EXPECT_DOUBLE_EQ(f.latency_p50_s, 0.0025);
  EXPECT_NEAR(f.latency_p90_s, 0.0037, 1e-15);   // 1 + 0.9·3 ms
  EXPECT_NEAR(f.latency_p99_s, 0.00397, 1e-15);  // 1 + 0.99·3 ms
  EXPECT_DOUBLE_EQ(f.latency_min_s, 0.001);
  EXPECT_DOUBLE_EQ(f.latency_max_s, 0.004);
  EXPECT_THROW(derive_search_figures({}, 32), Error);
}

TEST(IndexBench, OneCaseMeasuresAndScores) {
  IndexBenchCase c;
  c.descriptor = "torch:flat";
  c.data = "clustered";
  c.n = 500;
  c.dim = 16;
  c.queries = 8;
  c.k = 5;
  c.seed = 1;
  c.warmup = 1;
  c.repeat = 4;
  const IndexBenchData data = make_index_bench_data(c.data, c.n, c.dim, (c.warmup + c.repeat) * c.queries, c.seed);
  std::vector<int64_t> truth(c.repeat * c.queries * c.k);
  exact_search(c.n, data.keys.data(), c.repeat * c.queries, data.queries.data() + c.warmup * c.queries * c.dim,
               c.dim, c.k, truth.data());
  const IndexBenchResult r = run_index_bench_case(c, data, truth);
  EXPECT_EQ(r.batch_seconds.size(), 4u);
  EXPECT_DOUBLE_EQ(r.recall_at_1, 1.0);
  EXPECT_DOUBLE_EQ(r.recall_at_k, 1.0);
  EXPECT_EQ(r.lookup_flops_batch, 2 * 16 * 500 * 8);
  EXPECT_EQ(r.device, "cpu");
  EXPECT_GE(r.memory_bytes, 500 * 16 * 4);
  EXPECT_GT(r.figures.queries_per_s, 0);
  EXPECT_GT(r.build_s, 0);
  // Scored against the wrong truth, recall drops: the score is not a constant.
  std::vector<int64_t> shifted = truth;
  for (int64_t& t : shifted) t = (t + 1) % c.n;
  EXPECT_LT(run_index_bench_case(c, data, shifted).recall_at_k, 0.5);
}

TEST(IndexBench, DataFromNpyFile) {
  const std::string p = temp_path("bench.npy");
  const std::vector<float> x = uniform_vectors(30, 4, 1, 0);
  write_npy_matrix(p, 30, 4, x.data());
  const IndexBenchData d = make_index_bench_data(p, 20, 4, 10, 0);
  EXPECT_EQ(d.keys, std::vector<float>(x.begin(), x.begin() + 80));
  EXPECT_EQ(d.queries, std::vector<float>(x.begin() + 80, x.end()));
  EXPECT_CONTAINS(test::error_of([&] { make_index_bench_data(p, 25, 4, 10, 0); }), "30 rows, need 25 keys + 10 queries");
  EXPECT_CONTAINS(test::error_of([&] { make_index_bench_data(p, 20, 8, 10, 0); }), "dimension 4, the sweep asks for 8");
  std::remove(p.c_str());
}

}  // namespace
}  // namespace semskip
