#include "comm/mpi_check.h"

#include <unistd.h>

#include <cstring>
#include <string>

#include <fmt/format.h>

#include "core/error.h"

namespace semskip {

const char* this_host_name() {
  // gethostname, not MPI_Get_processor_name: it must work before MPI_Init and after MPI_Finalize.
  static const std::string name = [] {
    char buf[256] = {0};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return std::string("unknown-host");
    return std::string(buf);
  }();
  return name.c_str();
}

void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) std::snprintf(text, sizeof(text), "MPI error code %d", code);
  int initialized = 0, finalized = 0, rank = -1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char* slash = std::strrchr(file, '/');
  throw Error(fmt::format("MPI failure on host {} rank {} at {}:{}: {}: {}", this_host_name(), rank,
                          slash ? slash + 1 : file, line, call, text));
}

}  // namespace semskip
