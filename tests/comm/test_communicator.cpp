// MpiCommunicator on 1, 2, 3 and 4 ranks against values worked out by hand from each rank's
// contribution (rank r contributes something that is a simple function of r). With
// SEMSKIP_TEST_COMM=nccl (CUDA builds) the same tests run on the NCCL communicator, one GPU
// per rank: CPU inputs travel through the device and come back, so every expected value holds.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "comm/mpi_communicator.h"
#include "comm/nccl_communicator.h"
#include "comm/runtime.h"

namespace semskip {
namespace {

std::string backend() {
  const char* kind = std::getenv("SEMSKIP_TEST_COMM");
  return kind && *kind ? kind : "mpi";
}

Communicator& world() {
  static const std::unique_ptr<Communicator> device_comm = []() -> std::unique_ptr<Communicator> {
    if (backend() == "mpi") return nullptr;
    Runtime& rt = Runtime::get();
    return make_communicator(backend(), std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world"),
                             rt.device(at::Device(at::kCUDA)));
  }();
  return device_comm ? *device_comm : Runtime::get().world();
}

std::vector<int64_t> as_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(Communicator, DescribesItsGroup) {
  Communicator& c = world();
  EXPECT_EQ(c.describe(), backend() + ":world(" + std::to_string(c.size()) + ")");
  EXPECT_EQ(c.rank(), Runtime::get().rank());
  EXPECT_EQ(c.size(), Runtime::get().world_size());
}

TEST(Communicator, AllreduceSumMaxMinOverRanks) {
  Communicator& c = world();
  const int r = c.rank(), n = c.size();
  // Rank r contributes (r + 1) · [1, 2, 3] and −(r + 1) · 0.5.
  const at::Tensor xf = at::tensor({1.0f, 2.0f, 3.0f, -0.5f}) * static_cast<float>(r + 1);
  const double tri = n * (n + 1) / 2.0;  // Σ (r + 1)
  EXPECT_TRUE(at::equal(c.allreduce(xf, ReduceOp::sum),
                        at::tensor({1.0f, 2.0f, 3.0f, -0.5f}) * static_cast<float>(tri)));
  EXPECT_TRUE(at::equal(c.allreduce(xf, ReduceOp::max), at::tensor({1.0f * n, 2.0f * n, 3.0f * n, -0.5f})));
  EXPECT_TRUE(at::equal(c.allreduce(xf, ReduceOp::min), at::tensor({1.0f, 2.0f, 3.0f, -0.5f * n})));

  const at::Tensor xl = at::tensor({int64_t(r), int64_t(10 * r + 7)});
  EXPECT_EQ(as_vector(c.allreduce(xl, ReduceOp::sum)),
            (std::vector<int64_t>{n * (n - 1) / 2, 10 * n * (n - 1) / 2 + 7 * n}));
  EXPECT_EQ(as_vector(c.allreduce(xl, ReduceOp::max)), (std::vector<int64_t>{n - 1, 10 * (n - 1) + 7}));

  const at::Tensor xd = at::full({2, 2}, 0.25 * (r + 1), at::kDouble);
  EXPECT_TRUE(at::equal(c.allreduce(xd, ReduceOp::sum), at::full({2, 2}, 0.25 * tri, at::kDouble)));
  // The input is left alone.
  EXPECT_TRUE(at::equal(xd, at::full({2, 2}, 0.25 * (r + 1), at::kDouble)));
}

TEST(Communicator, AllreduceOfStridedInputKeepsShape) {
  Communicator& c = world();
  const at::Tensor base = at::arange(6, at::kFloat).reshape({2, 3});
  const at::Tensor out = c.allreduce(base.t(), ReduceOp::sum);  // a non-contiguous [3, 2]
  EXPECT_TRUE(at::equal(out, base.t() * static_cast<float>(c.size())));
}

TEST(Communicator, ReductionsRefuseTypesWithoutMpiArithmetic) {
  Communicator& c = world();
  // Refused before anything is sent, on every rank alike, so the group stays in step.
  for (at::ScalarType t : {at::kBFloat16, at::kHalf, at::kBool, at::kInt}) {
    try {
      c.allreduce(at::ones({3}, t), ReduceOp::sum);
      ADD_FAILURE() << "allreduce of " << c10::toString(t) << " did not throw";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot reduce"), std::string::npos) << e.what();
    }
  }
  c.barrier();
}

TEST(Communicator, AllgatherStacksEveryRank) {
  Communicator& c = world();
  const int r = c.rank(), n = c.size();
  const at::Tensor x = at::full({2, 3}, static_cast<float>(r) + 0.5f);
  const at::Tensor g = c.allgather(x);
  ASSERT_EQ(g.sizes().vec(), (std::vector<int64_t>{n, 2, 3}));
  for (int s = 0; s < n; ++s) EXPECT_TRUE(at::equal(g[s], at::full({2, 3}, s + 0.5f))) << "rank " << s;

  // bf16 travels as 16-bit words: exactly representable values come back exactly.
  const at::Tensor xb = at::tensor({float(r), -2.5f * float(r), 0.125f}).to(at::kBFloat16);
  const at::Tensor gb = c.allgather(xb);
  ASSERT_EQ(gb.scalar_type(), at::kBFloat16);
  for (int s = 0; s < n; ++s)
    EXPECT_TRUE(at::equal(gb[s].to(at::kFloat), at::tensor({float(s), -2.5f * float(s), 0.125f}))) << "rank " << s;

  const at::Tensor gs = c.allgather(at::tensor(int64_t(100 + r)));  // a 0-dim tensor -> [n]
  std::vector<int64_t> expected;
  for (int s = 0; s < n; ++s) expected.push_back(100 + s);
  EXPECT_EQ(as_vector(gs), expected);
}

TEST(Communicator, AllgathervWithUnevenAndEmptyContributions) {
  Communicator& c = world();
  const int r = c.rank(), n = c.size();
  // Rank r contributes r rows (rank 0 none): row j of rank r is [100r + j, −(100r + j)].
  at::Tensor x = at::empty({r, 2}, at::kLong);
  for (int j = 0; j < r; ++j) {
    x[j][0] = 100 * r + j;
    x[j][1] = -(100 * r + j);
  }
  std::vector<int64_t> counts;
  const at::Tensor g = c.allgatherv(x, &counts);
  std::vector<int64_t> expected_counts, expected;
  for (int s = 0; s < n; ++s) {
    expected_counts.push_back(s);
    for (int j = 0; j < s; ++j) {
      expected.push_back(100 * s + j);
      expected.push_back(-(100 * s + j));
    }
  }
  EXPECT_EQ(counts, expected_counts);
  ASSERT_EQ(g.sizes().vec(), (std::vector<int64_t>{n * (n - 1) / 2, 2}));
  EXPECT_EQ(as_vector(g), expected);

  // fp16 rows of width 3, rank r sends r + 1 rows of value r.
  const at::Tensor h = c.allgatherv(at::full({r + 1, 3}, static_cast<float>(r)).to(at::kHalf));
  ASSERT_EQ(h.scalar_type(), at::kHalf);
  ASSERT_EQ(h.size(0), n * (n + 1) / 2);
  int64_t row = 0;
  for (int s = 0; s < n; ++s)
    for (int j = 0; j <= s; ++j, ++row) EXPECT_TRUE(at::equal(h[row].to(at::kFloat), at::full({3}, float(s))));
}

TEST(Communicator, AllgathervRefusesRowsOfDifferentWidths) {
  Communicator& c = world();
  if (c.size() == 1) GTEST_SKIP() << "needs two ranks to disagree";
  // Every rank learns the mismatch from the same gathered metadata and throws alike.
  EXPECT_THROW(c.allgatherv(at::zeros({1, 2 + (c.rank() == 1 ? 1 : 0)})), Error);
  c.barrier();
}

// Rank s sends (s + d) % 3 rows to rank d: zero counts both ways on every group size.
int64_t pairs(int s, int d) { return (s + d) % 3; }

TEST(Communicator, AlltoallvWithZeroCountsDeliversRowsBySource) {
  Communicator& c = world();
  const int me = c.rank(), n = c.size();
  std::vector<int64_t> send_counts;
  std::vector<at::Tensor> blocks;
  for (int d = 0; d < n; ++d) {
    send_counts.push_back(pairs(me, d));
    // Row j to d: [1000·me + 10·d + j, j] — who sent it, to whom, which one.
    at::Tensor b = at::empty({pairs(me, d), 2}, at::kLong);
    for (int64_t j = 0; j < pairs(me, d); ++j) {
      b[j][0] = 1000 * me + 10 * d + j;
      b[j][1] = j;
    }
    blocks.push_back(b);
  }
  const AlltoallvResult got = c.alltoallv(at::cat(blocks, 0), send_counts);
  std::vector<int64_t> expected_counts, expected;
  for (int s = 0; s < n; ++s) {
    expected_counts.push_back(pairs(s, me));
    for (int64_t j = 0; j < pairs(s, me); ++j) {
      expected.push_back(1000 * s + 10 * me + j);
      expected.push_back(j);
    }
  }
  EXPECT_EQ(got.counts, expected_counts);
  EXPECT_EQ(as_vector(got.rows), expected);
  EXPECT_EQ(got.rows.size(1), 2);
}

TEST(Communicator, AlltoallvMovesBf16AndBoolPayloads) {
  Communicator& c = world();
  const int me = c.rank(), n = c.size();
  std::vector<int64_t> send_counts;
  std::vector<at::Tensor> values, flags;
  for (int d = 0; d < n; ++d) {
    send_counts.push_back(pairs(me, d));
    for (int64_t j = 0; j < pairs(me, d); ++j) {
      // Small integers and halves are exact in bf16.
      values.push_back(at::full({1, 4}, 16.0f * me + 4.0f * d + j + 0.5f));
      flags.push_back(at::full({1}, (me + d + j) % 2 == 1, at::kBool));
    }
  }
  const at::Tensor v = values.empty() ? at::empty({0, 4}) : at::cat(values, 0);
  const at::Tensor f = flags.empty() ? at::empty({0}, at::kBool) : at::cat(flags, 0);
  const std::vector<int64_t> recv_counts = c.alltoall_counts(send_counts);
  const at::Tensor vb = c.alltoallv(v.to(at::kBFloat16), send_counts, recv_counts);
  const at::Tensor fb = c.alltoallv(f, send_counts, recv_counts);
  ASSERT_EQ(vb.scalar_type(), at::kBFloat16);
  ASSERT_EQ(fb.scalar_type(), at::kBool);
  int64_t row = 0;
  for (int s = 0; s < n; ++s) {
    ASSERT_EQ(recv_counts[static_cast<size_t>(s)], pairs(s, me));
    for (int64_t j = 0; j < pairs(s, me); ++j, ++row) {
      EXPECT_TRUE(at::equal(vb[row].to(at::kFloat), at::full({4}, 16.0f * s + 4.0f * me + j + 0.5f)));
      EXPECT_EQ(fb[row].item<bool>(), (s + me + j) % 2 == 1);
    }
  }
  EXPECT_EQ(row, vb.size(0));
}

TEST(Communicator, AlltoallvChecksItsCounts) {
  Communicator& c = world();
  const std::vector<int64_t> ones(static_cast<size_t>(c.size()), 1);
  EXPECT_THROW(c.alltoallv(at::zeros({c.size() + 1, 2}), ones, ones), Error);  // counts ≠ rows
  EXPECT_THROW(c.alltoall_counts(std::vector<int64_t>(static_cast<size_t>(c.size()) + 1, 0)), Error);
  c.barrier();
}

TEST(Communicator, BroadcastCarriesShapeDtypeAndStrings) {
  Communicator& c = world();
  const int root = c.size() - 1;
  const bool is_root = c.rank() == root;
  const at::Tensor sent = at::arange(12, at::kFloat).reshape({3, 4}).to(at::kBFloat16);
  const at::Tensor got = c.broadcast(is_root ? sent : at::Tensor(), root);
  EXPECT_EQ(got.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(got, sent));

  const std::string text = c.broadcast(is_root ? std::string("decided on the root \0 with a NUL", 32) : "ignored", root);
  EXPECT_EQ(text, std::string("decided on the root \0 with a NUL", 32));

  nlohmann::json cfg;
  if (c.rank() == 0) cfg = {{"cache_mode", "sharded"}, {"seed", 17}, {"ranks", c.size()}};
  const nlohmann::json got_cfg = c.broadcast_json(cfg, 0);
  EXPECT_EQ(got_cfg.at("cache_mode"), "sharded");
  EXPECT_EQ(got_cfg.at("seed"), 17);
  EXPECT_EQ(got_cfg.at("ranks"), c.size());
}

TEST(Communicator, CountsBytesPerCollectiveKind) {
  Communicator& c = world();
  const int me = c.rank(), n = c.size();
  c.barrier();
  c.reset_stats();
  // allgatherv: rank r sends 2r float rows of 8 elements (32 bytes), plus 24 bytes of metadata per peer.
  c.allgatherv(at::zeros({2 * me, 8}));
  const CollectiveCounters& g = c.stats()[CollectiveKind::allgatherv];
  EXPECT_EQ(g.n_calls, 1);
  EXPECT_EQ(g.bytes_sent, (n - 1) * (24 + 2 * me * 32));
  EXPECT_EQ(g.bytes_recv, (n - 1) * 24 + (n * (n - 1) - 2 * me) * 32);
  // alltoallv with known counts: 3 int64 rows (8 bytes) to every other rank, one to itself.
  std::vector<int64_t> counts(static_cast<size_t>(n), 3);
  counts[static_cast<size_t>(me)] = 1;
  std::vector<int64_t> recv(static_cast<size_t>(n), 3);
  recv[static_cast<size_t>(me)] = 1;
  c.alltoallv(at::zeros({3 * (n - 1) + 1}, at::kLong), counts, recv);
  const CollectiveCounters& a = c.stats()[CollectiveKind::alltoallv];
  EXPECT_EQ(a.bytes_sent, (n - 1) * 3 * 8);
  EXPECT_EQ(a.bytes_recv, (n - 1) * 3 * 8);
  // allreduce of 16 doubles: 2(n−1)/n · 128 bytes each way.
  c.allreduce(at::zeros({16}, at::kDouble), ReduceOp::sum);
  EXPECT_EQ(c.stats()[CollectiveKind::allreduce].bytes_sent, 2 * (n - 1) * 128 / n);
  c.barrier();
  EXPECT_EQ(c.stats()[CollectiveKind::barrier].n_calls, 1);
  EXPECT_EQ(c.stats().total().n_calls, 4);
  EXPECT_GT(c.stats().total().t_ns, 0);
}

// The result is on the input's device; on NCCL a CUDA input never leaves the device.
TEST(Communicator, ResultsStayOnTheInputsDevice) {
  Communicator& c = world();
  if (backend() != "nccl") GTEST_SKIP() << "CUDA inputs need the NCCL communicator";
  const at::Device dev = Runtime::get().device(at::Device(at::kCUDA));
  const int r = c.rank(), n = c.size();
  const at::Tensor x = at::full({4}, static_cast<double>(r + 1), at::TensorOptions().dtype(at::kDouble).device(dev));
  const at::Tensor s = c.allreduce(x, ReduceOp::sum);
  EXPECT_TRUE(s.device() == dev);
  EXPECT_TRUE(at::equal(s.cpu(), at::full({4}, n * (n + 1) / 2.0, at::kDouble)));
  const at::Tensor g = c.allgatherv(at::full({r, 3}, r, at::TensorOptions().dtype(at::kBFloat16).device(dev)));
  EXPECT_TRUE(g.device() == dev);
  EXPECT_EQ(g.size(0), n * (n - 1) / 2);
}

// `--comm`: the choices, and what a build without NCCL says.
TEST(Communicator, CommChoiceIsCheckedAndNamed) {
  Runtime::get();
  auto host = [] { return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world"); };
  EXPECT_EQ(make_communicator("mpi", host(), at::Device(at::kCPU))->describe().rfind("mpi:", 0), 0u);
  EXPECT_EQ(make_communicator("auto", host(), at::Device(at::kCPU))->describe().rfind("mpi:", 0), 0u);
  try {
    make_communicator("gloo", host(), at::Device(at::kCPU));
    ADD_FAILURE() << "gloo accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("option --comm: expected auto, mpi or nccl, got 'gloo'"), std::string::npos);
  }
  if (!have_nccl()) {
    try {
      make_communicator("nccl", host(), at::Device(at::kCPU));
      ADD_FAILURE() << "nccl accepted without NCCL";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("this build has no NCCL"), std::string::npos);
    }
  } else {
    try {
      make_communicator("nccl", host(), at::Device(at::kCPU));
      ADD_FAILURE() << "nccl accepted on a CPU device";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("NCCL needs a CUDA device"), std::string::npos);
    }
  }
}

TEST(Communicator, SplitMakesIndependentGroups) {
  Communicator& c = world();
  const int me = c.rank(), n = c.size();
  // Two groups by parity, ranked in reverse inside each.
  std::unique_ptr<Communicator> half = c.split(me % 2, -me);
  int members = 0, above = 0, sum = 0;
  for (int r = 0; r < n; ++r) {
    if (r % 2 != me % 2) continue;
    ++members;
    sum += r;
    if (r > me) ++above;
  }
  EXPECT_EQ(half->size(), members);
  EXPECT_EQ(half->rank(), above);
  EXPECT_EQ(half->describe(), backend() + ":world/" + std::to_string(me % 2) + "(" + std::to_string(members) + ")");
  EXPECT_EQ(half->allreduce(at::tensor({int64_t(me)}), ReduceOp::sum).item<int64_t>(), sum);
  // Traffic of the group is its own.
  EXPECT_EQ(half->stats()[CollectiveKind::allreduce].n_calls, 1);
}

// Three ranks, every expected value written out per rank (no formula shared with the code
// under test): uneven allgatherv contributions (one rank sends nothing), an uneven alltoallv
// split with empty blocks in both directions and the reverse trip, and the odd-sized groups
// of a split.
TEST(Communicator, ThreeRanksByHand) {
  Communicator& c = world();
  if (c.size() != 3) GTEST_SKIP() << "written out for 3 ranks";
  const int me = c.rank();
  const auto rows = [](std::vector<int64_t> v) {
    const int64_t n = static_cast<int64_t>(v.size()) / 2;
    return at::tensor(v, at::kLong).view({n, 2});
  };

  // allgatherv: rank 0 sends 2 rows, rank 1 none, rank 2 three.
  const std::vector<at::Tensor> mine = {rows({10, -10, 11, -11}), rows({}), rows({20, -20, 21, -21, 22, -22})};
  std::vector<int64_t> counts;
  const at::Tensor g = c.allgatherv(mine[static_cast<size_t>(me)], &counts);
  EXPECT_EQ(counts, (std::vector<int64_t>{2, 0, 3}));
  EXPECT_EQ(as_vector(g), (std::vector<int64_t>{10, -10, 11, -11, 20, -20, 21, -21, 22, -22}));
  ASSERT_EQ(g.sizes().vec(), (std::vector<int64_t>{5, 2}));

  // alltoallv, rows [value, −value], value = 100·source + 10·destination + j:
  //   rank 0 sends 1 row to 0, 2 to 1, none to 2
  //   rank 1 sends none to 0, none to itself, 3 to 2
  //   rank 2 sends 2 to 0, 1 to 1, 1 to itself
  const std::vector<std::vector<int64_t>> send = {{1, 2, 0}, {0, 0, 3}, {2, 1, 1}};
  const std::vector<at::Tensor> out = {rows({0, 0, 10, -10, 11, -11}),
                                       rows({120, -120, 121, -121, 122, -122}),
                                       rows({200, -200, 201, -201, 210, -210, 220, -220})};
  const AlltoallvResult got = c.alltoallv(out[static_cast<size_t>(me)], send[static_cast<size_t>(me)]);
  const std::vector<std::vector<int64_t>> want_counts = {{1, 0, 2}, {2, 0, 1}, {0, 3, 1}};
  const std::vector<std::vector<int64_t>> want_rows = {
      {0, 0, 200, -200, 201, -201},                    // rank 0: its own row, then rank 2's two
      {10, -10, 11, -11, 210, -210},                   // rank 1: rank 0's two, then rank 2's one
      {120, -120, 121, -121, 122, -122, 220, -220}};   // rank 2: rank 1's three, then its own
  EXPECT_EQ(got.counts, want_counts[static_cast<size_t>(me)]);
  EXPECT_EQ(as_vector(got.rows), want_rows[static_cast<size_t>(me)]);
  // The reverse trip with the counts swapped brings every row home in its original order.
  const at::Tensor back = c.alltoallv(got.rows, got.counts, send[static_cast<size_t>(me)]);
  EXPECT_TRUE(at::equal(back, out[static_cast<size_t>(me)]));

  // allreduce over 3: sums and extremes of [me, 10 − 3·me].
  const at::Tensor x = at::tensor({int64_t(me), int64_t(10 - 3 * me)});
  EXPECT_EQ(as_vector(c.allreduce(x, ReduceOp::sum)), (std::vector<int64_t>{3, 21}));
  EXPECT_EQ(as_vector(c.allreduce(x, ReduceOp::min)), (std::vector<int64_t>{0, 4}));
  // bytes of a 3-rank ring allreduce of 2 int64: 2·(3 − 1)/3 · 16 = 21 (integer division).
  c.reset_stats();
  c.allreduce(x, ReduceOp::max);
  EXPECT_EQ(c.stats()[CollectiveKind::allreduce].bytes_sent, 21);

  // split into {0, 2} and {1}: the pair reverses its order, the single rank is a world of one.
  std::unique_ptr<Communicator> part = c.split(me == 1 ? 1 : 0, -me);
  const std::vector<int> want_size = {2, 1, 2}, want_rank = {1, 0, 0};
  EXPECT_EQ(part->size(), want_size[static_cast<size_t>(me)]);
  EXPECT_EQ(part->rank(), want_rank[static_cast<size_t>(me)]);
  std::vector<int64_t> part_counts;
  const at::Tensor pg = part->allgatherv(mine[static_cast<size_t>(me)], &part_counts);
  const std::vector<std::vector<int64_t>> want_pg = {{20, -20, 21, -21, 22, -22, 10, -10, 11, -11}, {},
                                                     {20, -20, 21, -21, 22, -22, 10, -10, 11, -11}};
  EXPECT_EQ(as_vector(pg), want_pg[static_cast<size_t>(me)]);
  const std::vector<std::vector<int64_t>> want_part_counts = {{3, 2}, {0}, {3, 2}};
  EXPECT_EQ(part_counts, want_part_counts[static_cast<size_t>(me)]);
  c.barrier();
}

}  // namespace
}  // namespace semskip
