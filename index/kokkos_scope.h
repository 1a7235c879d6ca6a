#pragma once
// KokkosScope: initialises Kokkos for the process if nobody has yet, and finalises it on
// destruction if it did the initialising. Kokkos must be initialised once per process
// before a "kokkos:" index is made, and every Kokkos view (so every such index) must be
// destroyed before Kokkos is finalised: hold one KokkosScope in main() (drivers, tests,
// benchmarks) around everything else. Without SEMSKIP_WITH_KOKKOS this does nothing.

#include <string>

namespace semskip {

class KokkosScope {
 public:
  KokkosScope();
  ~KokkosScope();
  KokkosScope(const KokkosScope&) = delete;
  KokkosScope& operator=(const KokkosScope&) = delete;

  // Whether this scope initialised Kokkos (and will finalise it).
  bool owns() const { return owns_; }

 private:
  bool owns_ = false;
};

// Whether Kokkos is compiled in and initialised now.
bool kokkos_ready();
// The execution space kokkos: indexes run on ("Serial", "OpenMP", "Cuda", …, as Kokkos names
// it), or "none" in a build without Kokkos.
std::string kokkos_execution_space();

}  // namespace semskip
