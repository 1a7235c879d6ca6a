#include "index/index_factory.h"

#include <functional>

#include "core/error.h"
#include "core/strings.h"
#include "index/descriptor.h"
#include "index/torch_flat_index.h"
#ifdef SEMSKIP_WITH_FAISS
#include "index/faiss_index.h"
#endif
#ifdef SEMSKIP_WITH_FAISS_GPU
#include "index/faiss_gpu_index.h"
#endif
#ifdef SEMSKIP_WITH_KOKKOS
#include "index/kokkos_flat_index.h"
#endif

namespace semskip {

namespace {

using MakeFn = std::function<std::unique_ptr<VectorIndex>(IndexDescriptor, int64_t)>;

struct Backend {
  const char* name;
  MakeFn make;          // empty when not compiled in
  const char* missing;  // why it is not compiled in
};

template <class T>
MakeFn maker() {
  return [](IndexDescriptor desc, int64_t dim) -> std::unique_ptr<VectorIndex> {
    return std::make_unique<T>(std::move(desc), dim);
  };
}

const std::vector<Backend>& backends() {
  static const std::vector<Backend> table = {
#ifdef SEMSKIP_WITH_FAISS
      {"faiss", maker<FaissIndex>(), nullptr},
#else
      {"faiss", {}, "this build has no FAISS (configure with -DSEMSKIP_WITH_FAISS=ON)"},
#endif
#ifdef SEMSKIP_WITH_FAISS_GPU
      {"faiss-gpu", maker<FaissGpuIndex>(), nullptr},
#else
      {"faiss-gpu", {}, "this build has no FAISS GPU (a CUDA build against a FAISS built with "
                        "FAISS_ENABLE_GPU: scripts/gpu/build-faiss-gpu.sh)"},
#endif
      {"torch", maker<TorchFlatIndex>(), nullptr},
#ifdef SEMSKIP_WITH_KOKKOS
      {"kokkos", maker<KokkosFlatIndex>(), nullptr},
#else
      {"kokkos", {}, "this build has no Kokkos (configure with -DSEMSKIP_WITH_KOKKOS=ON)"},
#endif
  };
  return table;
}

}  // namespace

std::unique_ptr<VectorIndex> make_index(const std::string& descriptor, int64_t dim) {
  IndexDescriptor desc = IndexDescriptor::parse(descriptor);
  SEMSKIP_THROW_IF_NOT_MSG(dim > 0, "index '{}': dimension must be positive, got {}", descriptor,
                           dim);
  std::vector<std::string> known;
  for (const Backend& b : backends()) {
    known.emplace_back(b.name);
    if (desc.backend() != b.name) continue;
    SEMSKIP_THROW_IF_NOT_MSG(b.make, "index descriptor '{}': backend '{}' is not available: {}",
                             descriptor, b.name, b.missing);
    return b.make(std::move(desc), dim);
  }
  SEMSKIP_THROW_MSG("index descriptor '{}': unknown backend '{}' (known: {})", descriptor,
                    desc.backend(), join(known, ", "));
}

std::vector<std::string> index_backends() {
  std::vector<std::string> out;
  for (const Backend& b : backends())
    if (b.make) out.emplace_back(b.name);
  return out;
}

}  // namespace semskip
