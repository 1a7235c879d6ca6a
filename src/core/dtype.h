#pragma once
// Floating-point storage/compute types named the same way everywhere ("fp32", "bf16", "fp16").

#include <string>
#include <string_view>

namespace semskip {

enum class DType { fp32, bf16, fp16 };

// Accepts fp32|float32|float, bf16|bfloat16, fp16|float16|half; semskip::Error otherwise.
DType parse_dtype(std::string_view s, std::string_view what);
const char* dtype_name(DType d);
size_t dtype_size(DType d);

}  // namespace semskip
