#include "core/dtype.h"

#include "core/error.h"

namespace semskip {

DType parse_dtype(std::string_view s, std::string_view what) {
  if (s == "fp32" || s == "float32" || s == "float") return DType::fp32;
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  if (s == "fp16" || s == "float16" || s == "half") return DType::fp16;
  SEMSKIP_THROW_MSG("{}: unknown dtype '{}' (expected fp32, bf16 or fp16)", what, s);
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::fp32: return "fp32";
    case DType::bf16: return "bf16";
    case DType::fp16: return "fp16";
  }
  SEMSKIP_ASSERT(false);
}

size_t dtype_size(DType d) { return d == DType::fp32 ? 4 : 2; }

}  // namespace semskip
