#include "model/device_memory.h"

#if SEMSKIP_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#endif

#include <fmt/format.h>

#include "model/model_config.h"

namespace semskip {

MemoryBound memory_bound(const at::Device& device) {
  if (device.is_cuda()) {
#if SEMSKIP_CUDA
    const int index = device.has_index() ? static_cast<int>(device.index()) : 0;
    const cudaDeviceProp* p = at::cuda::getDeviceProperties(index);
    return {static_cast<double>(p->totalGlobalMem), fmt::format("device cuda:{} ({})", index, p->name)};
#else
    return {1e300, "an unknown CUDA device"};  // unreachable: parse_device refuses CUDA in such builds
#endif
  }
  if (device.is_cpu()) return {ModelConfig::host_memory_bytes(), "this host's memory"};
  return {1e300, fmt::format("device {}", device.str())};  // meta: shapes only, nothing allocated
}

}  // namespace semskip
