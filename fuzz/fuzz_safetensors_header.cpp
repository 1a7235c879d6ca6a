// libFuzzer target: the safetensors header parser on arbitrary file contents. Every input
// either parses into entries that lie inside the data section without overlapping, or is
// refused with semskip::Error naming the file; anything else (a crash, a sanitiser report,
// another exception) is a finding.

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "model/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so that a read past the end is an ASan report.
  std::vector<uint8_t> bytes(data, data + size);
  try {
    const semskip::SafetensorsHeader h =
        semskip::parse_safetensors_header(bytes.data(), bytes.size(), "fuzz.safetensors");
    const uint64_t data_size = size - 8 - h.header_len;
    for (const auto& [name, e] : h.tensors)
      if (e.begin > e.end || e.end > data_size) std::abort();  // accepted an entry outside the file
  } catch (const semskip::Error& e) {
    if (std::string(e.what()).find("fuzz.safetensors") == std::string::npos) std::abort();
  }
  return 0;
}
