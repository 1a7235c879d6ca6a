#!/usr/bin/env bash
# Tries to build Kokkos with its CUDA backend on the GPU machine: the Kokkos that Debian ships
# inside Trilinos 13.2.0 (Kokkos 3.4, packages/kokkos, packed in .gpu-deps as
# kokkos-3.4-trilinos-13.2.0.tar.gz), compiled by its nvcc_wrapper with the machine's CUDA.
# Kokkos 3.4 predates Hopper, so the device code is built for Ampere (sm_80, with its PTX,
# which the driver compiles for sm_90 at load time). Three fixes make it build with CUDA 13
# (each commented where it is made; KOKKOS_CUDA13_PATCH=0 leaves out the source patch, to see
# the compiler's refusal).
#
# On success it installs into the prefix and compiles and runs a probe that fills and reduces
# a View on Kokkos::DefaultExecutionSpace, printing the space's name; on failure it prints
# the first compiler or CMake errors. Either way the full log is $log, and the last line says
# what happened: "kokkos-cuda: ok <space>" or "kokkos-cuda: failed at <stage>".
#
#   SEMSKIP_KOKKOS_ROOT  install prefix (default build/kokkos-cuda/prefix)
#   SEMSKIP_DEPS         folder with the Kokkos tarball (default .gpu-deps)
#   CUDA_HOME            the CUDA toolkit (default /usr/local/cuda)
#   KOKKOS_LOG           where the log goes (default build/kokkos-cuda/build.log)
set -uo pipefail
cd "$(dirname "$0")/../.."
deps="$(realpath "${SEMSKIP_DEPS:-.gpu-deps}")"
work="$(pwd)/build/kokkos-cuda"
prefix="${SEMSKIP_KOKKOS_ROOT:-$work/prefix}"
cuda_home="${CUDA_HOME:-/usr/local/cuda}"
log="${KOKKOS_LOG:-$work/build.log}"
tarball="$deps/kokkos-3.4-trilinos-13.2.0.tar.gz"
mkdir -p "$work" "$(dirname "$log")"
: > "$log"

fail() {
  echo "kokkos-cuda: first errors of stage '$1' (full log: $log):"
  grep -m 15 -iE "error|fatal|unsupported" "$log" || tail -n 15 "$log"
  echo "kokkos-cuda: failed at $1"
  exit 1
}

[ -f "$tarball" ] || { echo "kokkos-cuda: $tarball is missing"; echo "kokkos-cuda: failed at sources"; exit 2; }
export PATH="$cuda_home/bin:$PATH"
{ echo "nvcc: $(nvcc --version | tail -n 1)"; echo "g++: $(g++ --version | head -n 1)"; } >> "$log"
rm -rf "$work/src" "$work/build"
mkdir -p "$work/src"
tar xzf "$tarball" -C "$work/src" --strip-components=1 || fail sources
# nvcc_wrapper of Kokkos 3.4 compiles for sm_35 unless a file passes -arch (CMake's compiler
# checks do not), and CUDA 12 dropped sm_35 ("nvcc fatal: Unsupported gpu architecture
# 'sm_35'" at configure): its default becomes the architecture the build targets.
sed -i 's/^default_arch="sm_35"/default_arch="sm_80"/' "$work/src/bin/nvcc_wrapper"
grep -q '^default_arch="sm_80"' "$work/src/bin/nvcc_wrapper" || fail patch-default-arch
# Debian's source package leaves out example/, which a standalone configure adds.
[ -d "$work/src/example" ] || { mkdir -p "$work/src/example" && : > "$work/src/example/CMakeLists.txt"; }
# Two CUDA 13 API changes (scripts/gpu/patches/kokkos-3.4-cuda13.patch says which); without
# them kokkoscore does not compile ("no suitable user-defined conversion from half_t to
# __half", "__half2double is undefined", cudaMemPrefetchAsync's new cudaMemLocation argument).
if [ "${KOKKOS_CUDA13_PATCH:-1}" = 1 ]; then
  patch -d "$work/src" -p1 < scripts/gpu/patches/kokkos-3.4-cuda13.patch >> "$log" 2>&1 || fail patch-cuda13
fi

# nvcc_wrapper compiles every C++ file through nvcc, with g++ as the host compiler.
export NVCC_WRAPPER_DEFAULT_COMPILER=g++
cmake -S "$work/src" -B "$work/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_CXX_COMPILER="$work/src/bin/nvcc_wrapper" \
  -DCMAKE_CXX_STANDARD=17 \
  -DKokkos_ENABLE_SERIAL=ON \
  -DKokkos_ENABLE_OPENMP=ON \
  -DKokkos_ENABLE_CUDA=ON \
  -DKokkos_ENABLE_CUDA_LAMBDA=ON \
  -DKokkos_ARCH_AMPERE80=ON \
  -DKokkos_ENABLE_TESTS=OFF >> "$log" 2>&1 || fail configure
cmake --build "$work/build" -j"$(nproc)" >> "$log" 2>&1 || fail build
cmake --install "$work/build" >> "$log" 2>&1 || fail install

cat > "$work/probe.cpp" <<'CPP'
// Fills a View of n ones on the default execution space and reduces it on the device.
#include <Kokkos_Core.hpp>
#include <cstdio>
int main(int argc, char** argv) {
  Kokkos::initialize(argc, argv);
  int rc = 0;
  {
    const int n = 1 << 20;
    Kokkos::View<float*> v("v", n);
    Kokkos::parallel_for("fill", n, KOKKOS_LAMBDA(const int i) { v(i) = 1.0f; });
    float sum = 0;
    Kokkos::parallel_reduce("sum", n, KOKKOS_LAMBDA(const int i, float& s) { s += v(i); }, sum);
    std::printf("%s %.0f\n", Kokkos::DefaultExecutionSpace::name(), sum);
    rc = sum == static_cast<float>(n) ? 0 : 3;
  }
  Kokkos::finalize();
  return rc;
}
CPP
"$prefix/bin/nvcc_wrapper" -std=c++17 -O2 --expt-extended-lambda -arch=sm_80 -fopenmp \
  -I"$prefix/include" "$work/probe.cpp" -o "$work/probe" -L"$prefix/lib" -L"$prefix/lib64" \
  -lkokkoscore -ldl >> "$log" 2>&1 || fail probe-compile
out="$("$work/probe" 2>>"$log")" || { echo "$out" >> "$log"; fail probe-run; }
echo "kokkos-cuda: ok $out"
