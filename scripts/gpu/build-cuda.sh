#!/usr/bin/env bash
# Builds the `cuda` preset on a GPU machine whose LibTorch is the one shipped with PyTorch
# (pip or conda), with NCCL from the same Python environment.
#
#   PYTHON               the Python whose torch and nvidia-nccl packages to use (python3)
#   SEMSKIP_EXTRA_ROOT   a folder with usr/{include,lib} of libraries the machine lacks (for
#                        instance Debian packages unpacked with `dpkg -x pkg.deb $ROOT`):
#                        searched by CMake and pkg-config, and put on LD_LIBRARY_PATH
#   SEMSKIP_WITH_FAISS   ON to build the FAISS backends (FAISS must be findable); default OFF
#   SEMSKIP_FAISS_ROOT   the install prefix of a FAISS (scripts/gpu/build-faiss-gpu.sh): searched
#                        first, put on LD_LIBRARY_PATH, and SEMSKIP_WITH_FAISS defaults to ON;
#                        when that FAISS has its GPU headers the faiss-gpu backends are built
#   SEMSKIP_CMAKE_ARGS   further configure arguments, space-separated (-DSEMSKIP_WITH_FAISS_GPU=OFF)
#   SEMSKIP_TARGETS      targets to build (default: all)
#   SEMSKIP_BUILD_TESTS  OFF to configure without the test suites (default ON)
#   SEMSKIP_BUILD_DIR    another build folder than the preset's build/cuda (a second
#                        configuration beside it, e.g. with a CUDA Kokkos)
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
torch_cmake="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
nccl_root="$("$py" -c 'import nvidia.nccl as m; print(list(m.__path__)[0])')"
prefix="$torch_cmake"
if [ -n "${SEMSKIP_EXTRA_ROOT:-}" ]; then
  multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
  export PKG_CONFIG_SYSROOT_DIR="$SEMSKIP_EXTRA_ROOT"
  export PKG_CONFIG_PATH="$SEMSKIP_EXTRA_ROOT/usr/lib/$multiarch/pkgconfig:$SEMSKIP_EXTRA_ROOT/usr/share/pkgconfig"
  export LD_LIBRARY_PATH="$SEMSKIP_EXTRA_ROOT/usr/lib/$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  prefix="$prefix;$SEMSKIP_EXTRA_ROOT/usr"
fi
if [ -n "${SEMSKIP_FAISS_ROOT:-}" ]; then
  prefix="$SEMSKIP_FAISS_ROOT;$prefix"
  export LD_LIBRARY_PATH="$SEMSKIP_FAISS_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  SEMSKIP_WITH_FAISS="${SEMSKIP_WITH_FAISS:-ON}"
  if [ -f "$SEMSKIP_FAISS_ROOT/include/faiss/gpu/GpuIndexFlat.h" ]; then
    echo "build-cuda: FAISS in $SEMSKIP_FAISS_ROOT has GPU support" >&2
  fi
fi
cuda_home="${CUDA_HOME:-/usr/local/cuda}"
build_dir=(); build_target=(--preset cuda)
if [ -n "${SEMSKIP_BUILD_DIR:-}" ]; then build_dir=(-B "$SEMSKIP_BUILD_DIR"); build_target=("$SEMSKIP_BUILD_DIR"); fi
cmake --preset cuda "${build_dir[@]}" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DNCCL_ROOT="$nccl_root" \
  -DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc" \
  -DSEMSKIP_WITH_FAISS="${SEMSKIP_WITH_FAISS:-OFF}" \
  -DSEMSKIP_BUILD_TESTS="${SEMSKIP_BUILD_TESTS:-ON}" ${SEMSKIP_CMAKE_ARGS:-}
if [ -n "${SEMSKIP_TARGETS:-}" ]; then
  cmake --build "${build_target[@]}" -j"$(nproc)" --target ${SEMSKIP_TARGETS}
else
  cmake --build "${build_target[@]}" -j"$(nproc)"
fi
