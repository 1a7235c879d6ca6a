#pragma once
// make_index: the one way to build a VectorIndex, from a descriptor (index/descriptor.h):
//
//   faiss:<factory>[|param=value…]       FAISS CPU (index/faiss_index.h)
//   torch:flat[|device=…][|chunk=…]      LibTorch matmul + top-k (index/torch_flat_index.h)
//   kokkos:flat[|chunk=…]                Kokkos kernels (index/kokkos_flat_index.h)
//
// The backend table in index_factory.cpp is where a GPU build adds "faiss-gpu:<factory>".

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/vector_index.h"

namespace semskip {

// semskip::Error naming the descriptor for a malformed descriptor, an unknown backend, a
// backend not compiled into this build (and the CMake option that enables it), or
// anything the backend rejects. The index's describe() returns `descriptor` unchanged.
std::unique_ptr<VectorIndex> make_index(const std::string& descriptor, int64_t dim);

// Backends compiled into this build, in table order ("faiss", "torch", "kokkos").
std::vector<std::string> index_backends();

}  // namespace semskip
