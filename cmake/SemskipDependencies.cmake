# Every dependency through find_package; nothing is downloaded at configure time.

# OpenMP before FAISS: faiss-config.cmake links OpenMP::OpenMP_CXX without finding it.
find_package(OpenMP REQUIRED)
find_package(Threads REQUIRED)

find_package(Torch REQUIRED)
# LibTorch's flags carry the C++ ABI define; every target that includes ATen needs them.
separate_arguments(SEMSKIP_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")

if(SEMSKIP_WITH_FAISS)
  find_package(faiss REQUIRED)
endif()

if(SEMSKIP_WITH_KOKKOS)
  # A Kokkos built for CUDA would otherwise route every compile line of the project through its
  # launcher script, which loses the quoting of string definitions (SEMSKIP_*_DIR); the one
  # target that includes Kokkos asks for the launcher itself (index/CMakeLists.txt).
  set(Kokkos_LAUNCH_COMPILER OFF)
  find_package(Kokkos REQUIRED)
  # Trilinos' Kokkos export points its include dir at a path that does not exist.
  if(EXISTS /usr/include/trilinos/Kokkos_Core.hpp)
    set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES /usr/include/trilinos)
  endif()
endif()

find_package(MPI REQUIRED COMPONENTS C)

# The report is written by one rank, so the serial HDF5 flavour is the one we want.
set(HDF5_PREFER_PARALLEL FALSE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(HDF5_IS_PARALLEL)
  message(STATUS "semskip: using a parallel HDF5 build for single-writer reports")
endif()

find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(tomlplusplus REQUIRED)

find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
# Unicode normalisation (NFC) for the tokenizer.
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)

if(SEMSKIP_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(SEMSKIP_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

if(SEMSKIP_WITH_CUDA)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT}/include $ENV{NCCL_ROOT}/include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${NCCL_ROOT}/lib $ENV{NCCL_ROOT}/lib)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "SEMSKIP_WITH_CUDA=ON needs NCCL: set NCCL_ROOT to a folder with include/nccl.h and lib/libnccl.so*")
  endif()
  add_library(semskip_nccl INTERFACE)
  target_include_directories(semskip_nccl INTERFACE ${NCCL_INCLUDE_DIR})
  target_link_libraries(semskip_nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
endif()
