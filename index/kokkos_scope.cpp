#include "index/kokkos_scope.h"

#ifdef SEMSKIP_WITH_KOKKOS
#include <Kokkos_Core.hpp>
#endif

namespace semskip {

#ifdef SEMSKIP_WITH_KOKKOS

KokkosScope::KokkosScope() {
  if (!Kokkos::is_initialized()) {
    // Kokkos' start-up advice (OMP_PROC_BIND and the like) goes to standard output, where it
    // would corrupt what a command prints there (index-bench --json).
    Kokkos::InitArguments args;
    args.disable_warnings = true;
    Kokkos::initialize(args);
    owns_ = true;
  }
}

KokkosScope::~KokkosScope() {
  if (owns_) Kokkos::finalize();
}

bool kokkos_ready() { return Kokkos::is_initialized(); }

std::string kokkos_execution_space() { return Kokkos::DefaultExecutionSpace::name(); }

#else

KokkosScope::KokkosScope() = default;
KokkosScope::~KokkosScope() = default;
bool kokkos_ready() { return false; }

std::string kokkos_execution_space() { return "none"; }

#endif

}  // namespace semskip
