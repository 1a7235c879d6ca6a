#!/usr/bin/env bash
# Builds FAISS 1.7.3 with its GPU indexes (FAISS_ENABLE_GPU=ON) from Debian's source package
# (the orig tarball and the Debian patches, both in .gpu-deps/) and installs the library,
# headers and CMake package into a prefix that scripts/gpu/build-cuda.sh takes as
# SEMSKIP_FAISS_ROOT. Only the faiss library is built: no Python, tests, demos or benchmarks.
#
#   SEMSKIP_FAISS_ROOT  install prefix (default build/faiss-gpu/prefix)
#   SEMSKIP_DEPS        folder with faiss_1.7.3.orig.tar.gz, faiss_1.7.3-*.debian.tar.xz and,
#                       where the machine has no BLAS, Debian's libopenblas0-pthread,
#                       libopenblas-pthread-dev, libgfortran5 and libquadmath0 .debs (default .gpu-deps)
#   CUDA_HOME           the CUDA toolkit (default /usr/local/cuda)
#   CUDA_ARCH           CMAKE_CUDA_ARCHITECTURES (default 90, the H100/H200)
#
# Needed with CUDA 12/13 and a current GCC, found by building: C++17 (the CUDA 13 headers and
# thrust refuse C++11/14), `-include cstdint` (1.7.3 uses uint8_t and friends without the
# header, which newer libstdc++ no longer includes transitively), an explicit architecture
# (CUDA 13 dropped the pre-Turing ones 1.7.3's default list names).
# The one library is compiled with AVX2 (what FAISS_OPT_LEVEL=avx2 does for its second copy,
# which would compile every CUDA file twice), so CPU FAISS on that machine runs its SIMD code.
# Prints the prefix on its last line. An existing install (lib/libfaiss.so and the GPU
# headers) is kept, so a second call costs nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
deps="$(realpath "${SEMSKIP_DEPS:-.gpu-deps}")"
work="$(pwd)/build/faiss-gpu"
prefix="${SEMSKIP_FAISS_ROOT:-$work/prefix}"
cuda_home="${CUDA_HOME:-/usr/local/cuda}"
arch="${CUDA_ARCH:-90}"
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"

if [ -f "$prefix/lib/libfaiss.so" ] && [ -f "$prefix/include/faiss/gpu/GpuIndexFlat.h" ]; then
  echo "build-faiss-gpu: already installed in $prefix" >&2
  echo "$prefix"
  exit 0
fi
orig="$deps/faiss_1.7.3.orig.tar.gz"
[ -f "$orig" ] || { echo "build-faiss-gpu: $orig is missing (apt-get source --download-only faiss)" >&2; exit 2; }
debian_tar="$(ls "$deps"/faiss_1.7.3-*.debian.tar.xz 2>/dev/null | head -n 1)"
[ -n "$debian_tar" ] || { echo "build-faiss-gpu: no faiss_1.7.3-*.debian.tar.xz in $deps" >&2; exit 2; }
[ -x "$cuda_home/bin/nvcc" ] || { echo "build-faiss-gpu: no nvcc in $cuda_home/bin" >&2; exit 2; }

# A build stopped half-way (a job's time limit) continues where it was: the prepared sources
# and the build folder are kept until the install is complete.
if [ ! -f "$work/src/.prepared" ]; then
  rm -rf "$work/src" "$work/build"
  mkdir -p "$work/src"
  tar xzf "$orig" -C "$work/src" --strip-components=1
  tar xJf "$debian_tar" -C "$work/src"
  ( cd "$work/src" && while read -r p; do
      [ -n "$p" ] && [ "${p#\#}" = "$p" ] || continue
      patch -p1 -s < "debian/patches/$p"
    done < debian/patches/series )
  # 1.7.3 pins C++11 with a plain set(), which a -DCMAKE_CXX_STANDARD cannot override.
  sed -i 's/^set(CMAKE_CXX_STANDARD 11)$/set(CMAKE_CXX_STANDARD 17)/' "$work/src/CMakeLists.txt"
  grep -q '^set(CMAKE_CXX_STANDARD 17)$' "$work/src/CMakeLists.txt" || { echo "build-faiss-gpu: could not set C++17" >&2; exit 1; }
  touch "$work/src/.prepared"
fi

# BLAS and LAPACK: the machine's, else OpenBLAS from the Debian .debs (unpacked next to the
# install; the prefix's lib/ gets links so that whoever loads libfaiss.so finds it).
blas_args=()
if ! ls /usr/lib/"$multiarch"/libopenblas.so /usr/lib/"$multiarch"/libblas.so >/dev/null 2>&1; then
  blas_root="$prefix/deps"
  mkdir -p "$blas_root" "$prefix/lib"
  for d in "$deps"/libopenblas0-pthread_*.deb "$deps"/libopenblas-pthread-dev_*.deb "$deps"/libgfortran5_*.deb \
           "$deps"/libquadmath0_*.deb; do
    [ -f "$d" ] || { echo "build-faiss-gpu: no system BLAS and no $d" >&2; exit 2; }
    dpkg -x "$d" "$blas_root"
  done
  ob="$blas_root/usr/lib/$multiarch/openblas-pthread"
  ln -sf "$ob/libopenblas.so.0" "$prefix/lib/libopenblas.so.0"
  ln -sf "$ob/libblas.so.3" "$prefix/lib/libblas.so.3"
  ln -sf "$ob/liblapack.so.3" "$prefix/lib/liblapack.so.3"
  for f in "$blas_root/usr/lib/$multiarch"/libgfortran.so.5* "$blas_root/usr/lib/$multiarch"/libquadmath.so.0*; do
    ln -sf "$f" "$prefix/lib/"
  done
  export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  blas_args=(-DBLA_VENDOR=OpenBLAS "-DBLAS_LIBRARIES=$ob/libopenblas.so" "-DLAPACK_LIBRARIES=$ob/libopenblas.so"
             "-DCMAKE_SHARED_LINKER_FLAGS=-L$prefix/lib -Wl,-rpath,$prefix/lib -Wl,-rpath-link,$prefix/lib")
fi

cmake -S "$work/src" -B "$work/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_INSTALL_LIBDIR=lib \
  -DBUILD_SHARED_LIBS=ON \
  -DFAISS_ENABLE_GPU=ON \
  -DFAISS_ENABLE_PYTHON=OFF \
  -DFAISS_ENABLE_C_API=OFF \
  -DBUILD_TESTING=OFF \
  -DFAISS_OPT_LEVEL=generic \
  -DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc" \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DCMAKE_CXX_STANDARD=17 \
  -DCMAKE_CUDA_STANDARD=17 \
  -DCMAKE_CXX_FLAGS="-include cstdint -mavx2 -mfma -mf16c -mpopcnt" \
  -DCMAKE_CUDA_FLAGS="-include cstdint" \
  "${blas_args[@]}"
cmake --build "$work/build" --target faiss -j"$(nproc)"
cmake --install "$work/build" >/dev/null
[ -f "$prefix/include/faiss/gpu/GpuIndexFlat.h" ] || { echo "build-faiss-gpu: install has no GPU headers" >&2; exit 1; }
echo "build-faiss-gpu: installed in $prefix" >&2
echo "$prefix"
