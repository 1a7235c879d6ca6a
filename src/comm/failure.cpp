#include "comm/failure.h"

#include <mpi.h>

#include <cstdio>

#include "comm/mpi_check.h"

namespace semskip {

int handle_command_failure(const std::string& command, const std::exception& e) {
  int initialized = 0, finalized = 0, size = 1, rank = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  const bool active = initialized && !finalized;
  if (active) {
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  }
  if (size > 1) {
    std::fprintf(stderr, "semskip %s: rank %d/%d (%s): error: %s\n", command.c_str(), rank, size, this_host_name(),
                 e.what());
  } else {
    std::fprintf(stderr, "semskip %s: error: %s\n", command.c_str(), e.what());
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // The other ranks may be waiting in a collective this rank will never join: end them all.
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

}  // namespace semskip
