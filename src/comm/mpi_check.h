#pragma once
// Every MPI call is checked (docs/conventions.md rule 10, nccl-tests' NCCLCHECK): a failing call throws
// semskip::Error naming the host, the rank, file:line, the call and MPI's own error string.
// Our communicators set MPI_ERRORS_RETURN, so errors reach this check instead of aborting
// inside the library without a word.

#include <mpi.h>

namespace semskip {

[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line);

// "host" of this process (MPI_Get_processor_name when MPI is up, else gethostname).
const char* this_host_name();

}  // namespace semskip

#define SEMSKIP_MPI_CHECK(call)                                                   \
  do {                                                                            \
    const int semskip_mpi_rc_ = (call);                                           \
    if (semskip_mpi_rc_ != MPI_SUCCESS)                                           \
      ::semskip::throw_mpi_error(semskip_mpi_rc_, #call, __FILE__, __LINE__);     \
  } while (0)
