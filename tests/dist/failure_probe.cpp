// dist_failure_probe <ok|throw|kill>: a stand-in for a semskip command under mpiexec, with
// main's failure path (handle_command_failure). Every rank but rank 1 waits in an allreduce;
// rank 1 joins it (ok), throws before joining (throw), or dies by SIGKILL (kill). The test
// around it checks that the job ends promptly with a non-zero status instead of hanging.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>

#include "core/error.h"
#include "dist/failure.h"
#include "dist/runtime.h"

namespace {

int run(const std::string& mode) {
  using namespace semskip;
  SEMSKIP_THROW_IF_NOT_MSG(mode == "ok" || mode == "throw" || mode == "kill", "mode must be ok, throw or kill, got '{}'",
                           mode);
  Runtime& rt = Runtime::get();
  rt.world().barrier();
  if (rt.rank() == 1 && mode != "ok") {
    // Let the other ranks reach the allreduce first: they are waiting in it when this one fails.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (mode == "kill") raise(SIGKILL);
    SEMSKIP_THROW_MSG("rank 1 fails on purpose");
  }
  const at::Tensor sum = rt.world().allreduce(at::tensor({int64_t(rt.rank() + 1)}), ReduceOp::sum);
  std::printf("rank %d: sum %lld\n", rt.rank(), static_cast<long long>(sum.item<int64_t>()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc > 1 ? argv[1] : "");
  } catch (const std::exception& e) {
    return semskip::handle_command_failure("dist-probe", e);
  }
}
