// `--comm auto|mpi|nccl` (resolve_comm_kind): which communicator a rank runs on its device, for a
// build with and without NCCL, and the refusals that name the option.
#include <gtest/gtest.h>

#include <string>

#include "comm/nccl_communicator.h"
#include "core/error.h"

namespace semskip {
namespace {

const at::Device kCpu(at::kCPU);
const at::Device kCuda0(at::kCUDA, 0);

std::string refusal(const std::string& kind, bool built_with_nccl, const at::Device& device) {
  try {
    resolve_comm_kind(kind, built_with_nccl, device);
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(CommChoice, AutoIsNcclOnlyOnCudaInANcclBuild) {
  EXPECT_STREQ(resolve_comm_kind("auto", true, kCuda0), "nccl");
  EXPECT_STREQ(resolve_comm_kind("auto", true, kCpu), "mpi");
  EXPECT_STREQ(resolve_comm_kind("auto", false, kCuda0), "mpi");
  EXPECT_STREQ(resolve_comm_kind("auto", false, kCpu), "mpi");
}

TEST(CommChoice, MpiIsAlwaysMpiAndNcclNeedsBoth) {
  for (bool built : {false, true}) {
    EXPECT_STREQ(resolve_comm_kind("mpi", built, kCpu), "mpi");
    EXPECT_STREQ(resolve_comm_kind("mpi", built, kCuda0), "mpi");
  }
  EXPECT_STREQ(resolve_comm_kind("nccl", true, kCuda0), "nccl");
}

TEST(CommChoice, NcclOnACpuBuildOrDeviceIsRefusedByName) {
  EXPECT_NE(refusal("nccl", false, kCpu).find("option --comm nccl: this build has no NCCL"), std::string::npos);
  EXPECT_NE(refusal("nccl", false, kCuda0).find("this build has no NCCL"), std::string::npos);
  EXPECT_NE(refusal("nccl", true, kCpu).find("option --comm nccl: NCCL needs a CUDA device, this rank runs on cpu"),
            std::string::npos);
  EXPECT_NE(refusal("gloo", true, kCuda0).find("option --comm: expected auto, mpi or nccl, got 'gloo'"),
            std::string::npos);
  EXPECT_NE(refusal("", false, kCpu).find("got ''"), std::string::npos);
}

// This build's own answer: the CPU build of the tests has no NCCL.
TEST(CommChoice, ThisBuildRefusesNcclOnCpu) {
  EXPECT_NE(refusal("nccl", have_nccl(), kCpu).find("option --comm nccl"), std::string::npos);
}

}  // namespace
}  // namespace semskip
