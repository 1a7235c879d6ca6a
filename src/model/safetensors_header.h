#pragma once
// The header of a safetensors file (8-byte little-endian length, then a JSON object of
// tensor entries and optional __metadata__), parsed and validated without LibTorch, so that
// the checks run the same in the Torch build, the sanitised build and the fuzzing targets.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace semskip {

// One tensor's entry; begin/end are offsets into the data section that follows the header.
struct SafetensorsEntry {
  std::string dtype;  // as in the header: "F32", "F16", "BF16", "I64", "I32", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  uint64_t header_len = 0;  // bytes of JSON after the 8-byte length; data starts at 8 + header_len
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;
};

// Validates the header of the `size` bytes at `bytes` (a whole file): its length, JSON syntax,
// repeated names, dtypes, shapes (overflow-checked) and data_offsets (inside the data section,
// matching dtype×shape, non-overlapping). semskip::Error naming `path` and the problem.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& path);

// Bytes per element of a safetensors dtype name (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL);
// semskip::Error naming `what` (the file and tensor) for anything else.
size_t safetensors_dtype_size(const std::string& dtype, const std::string& what);

}  // namespace semskip
