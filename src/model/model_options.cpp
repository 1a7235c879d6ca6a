#include "model/model_options.h"

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

AttnImpl parse_attn_impl(const std::string& s, const std::string& what) {
  if (s == "eager") return AttnImpl::eager;
  if (s == "sdpa") return AttnImpl::sdpa;
  SEMSKIP_THROW_MSG("{}: unknown attention implementation '{}' (expected eager or sdpa)", what, s);
}

const char* attn_impl_name(AttnImpl a) { return a == AttnImpl::eager ? "eager" : "sdpa"; }

at::ScalarType scalar_type(DType d) {
  switch (d) {
    case DType::fp32: return at::kFloat;
    case DType::bf16: return at::kBFloat16;
    case DType::fp16: return at::kHalf;
  }
  SEMSKIP_ASSERT(false);
}

at::Device parse_device(const std::string& s, const std::string& what) {
  if (s == "cpu") return at::Device(at::kCPU);
  if (s == "cuda" || starts_with(s, "cuda:")) {
    SEMSKIP_THROW_IF_NOT_MSG(at::hasCUDA(), "{}: '{}' asked for, but this build or machine has no CUDA",
                             what, s);
    if (s == "cuda") return at::Device(at::kCUDA, 0);
    const int64_t index = parse_int(s.substr(5), what);
    SEMSKIP_THROW_IF_NOT_MSG(index >= 0 && index < static_cast<int64_t>(at::detail::getCUDAHooks().getNumGPUs()),
                             "{}: no CUDA device {} on this machine", what, index);
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  SEMSKIP_THROW_MSG("{}: unknown device '{}' (expected cpu, cuda or cuda:N)", what, s);
}

}  // namespace semskip
