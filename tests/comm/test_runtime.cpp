// Runtime: what MPI says about this process, gathered consistently on every rank.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <set>

#include "core/error.h"
#include "comm/runtime.h"

namespace semskip {
namespace {

TEST(Runtime, RankAndSizeAreMpis) {
  const Runtime& rt = Runtime::get();
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(rt.rank(), rank);
  EXPECT_EQ(rt.world_size(), size);
  EXPECT_EQ(rt.is_root(), rank == 0);
  EXPECT_TRUE(Runtime::mpi_active());
  EXPECT_EQ(&Runtime::get(), &rt);  // initialised once
}

TEST(Runtime, HostsAndLocalRanksAgreeWithTheNodes) {
  Runtime& rt = Runtime::get();
  ASSERT_EQ(static_cast<int>(rt.hosts().size()), rt.world_size());
  char name[256] = {0};
  ASSERT_EQ(gethostname(name, sizeof(name) - 1), 0);
  EXPECT_EQ(rt.host(), std::string(name));
  // Ranks on this host: local_size of them, and this rank's local rank is its position among them.
  int same_host = 0, before = 0;
  for (int r = 0; r < rt.world_size(); ++r) {
    if (rt.hosts()[static_cast<size_t>(r)] != rt.host()) continue;
    ++same_host;
    if (r < rt.rank()) ++before;
  }
  EXPECT_EQ(rt.local_size(), same_host);
  EXPECT_EQ(rt.local_rank(), before);
  EXPECT_EQ(rt.n_nodes(), static_cast<int>(std::set<std::string>(rt.hosts().begin(), rt.hosts().end()).size()));
  EXPECT_EQ(rt.label(), "rank " + std::to_string(rt.rank()) + "/" + std::to_string(rt.world_size()) + " (" +
                            rt.host() + ")");
  // Every rank holds the same host table.
  const std::string mine = nlohmann::json(rt.hosts()).dump();
  EXPECT_EQ(rt.world().broadcast(mine, 0), mine);
}

TEST(Runtime, OneDevicePerProcess) {
  const Runtime& rt = Runtime::get();
  if (at::hasCUDA()) {
    EXPECT_TRUE(rt.device().is_cuda());
    EXPECT_EQ(rt.device(at::Device(at::kCUDA)), rt.device());
  } else {
    EXPECT_EQ(rt.device(), at::Device(at::kCPU));
    EXPECT_THROW(rt.device(at::Device(at::kCUDA)), Error);
  }
  EXPECT_EQ(rt.device(at::Device(at::kCPU)), at::Device(at::kCPU));
}

}  // namespace
}  // namespace semskip
