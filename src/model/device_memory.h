#pragma once
// The memory a model's tensors must fit in, the bound of the refusals of absurd shapes before any
// allocation (ModelConfig::check_weights_fit, check_kv_cache_fits): a CUDA device's total memory
// (from the CUDA runtime, through ATen), this host's physical memory for CPU. Without the bound,
// an impossible size ends in the allocator's message or in minutes of allocating.

#include <string>

#include <ATen/ATen.h>

namespace semskip {

struct MemoryBound {
  double bytes = 0;  // total memory; 1e300 where it is unknown (no bound)
  std::string name;  // for messages: "this host's memory", "device cuda:0 (NVIDIA H200)"
};

MemoryBound memory_bound(const at::Device& device);

}  // namespace semskip
