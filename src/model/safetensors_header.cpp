#include "model/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

// Safetensors stores numbers little-endian; the length is read in place.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "semskip reads safetensors in place and needs a little-endian host"
#endif

namespace semskip {

using nlohmann::json;

size_t safetensors_dtype_size(const std::string& dtype, const std::string& what) {
  static const std::pair<const char*, size_t> kSizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1},
  };
  for (const auto& [name, size] : kSizes)
    if (dtype == name) return size;
  SEMSKIP_THROW_MSG(
      "{}: unsupported dtype '{}' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, "
      "U8, BOOL)",
      what, dtype);
}

SafetensorsHeader parse_safetensors_header(const uint8_t* base, size_t file_size, const std::string& path) {
  SEMSKIP_THROW_IF_NOT_MSG(file_size >= 8,
                           "{}: truncated safetensors file: {} bytes, fewer than the 8-byte header length",
                           path, file_size);
  SafetensorsHeader out;
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  SEMSKIP_THROW_IF_NOT_MSG(header_len <= file_size - 8,
                           "{}: header length {} exceeds the {} bytes after it in the file (truncated "
                           "file, or not a safetensors file)",
                           path, header_len, file_size - 8);
  SEMSKIP_THROW_IF_NOT_MSG(header_len >= 2, "{}: header length {} is too short for a JSON header", path,
                           header_len);
  out.header_len = header_len;
  const char* header_begin = reinterpret_cast<const char*>(base + 8);
  json header;
  // A JSON parser keeps one of two equal keys silently; a header naming a tensor twice is
  // ambiguous about which data is meant, so the first repeated top-level key is refused.
  std::set<std::string> top_keys;
  std::string repeated_key;
  const json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && repeated_key.empty() &&
        !top_keys.insert(parsed.get<std::string>()).second) {
      repeated_key = parsed.get<std::string>();
    }
    return true;
  };
  try {
    header = json::parse(header_begin, header_begin + header_len, note_keys);
  } catch (const json::parse_error& e) {
    SEMSKIP_THROW_MSG("{}: safetensors header is not valid JSON (at byte {} of the header): {}", path, e.byte,
                      e.what());
  } catch (const json::exception& e) {
    // A number too large for any type is out_of_range, not a parse error.
    SEMSKIP_THROW_MSG("{}: safetensors header is not valid JSON: {}", path, e.what());
  }
  SEMSKIP_THROW_IF_NOT_MSG(header.is_object(), "{}: safetensors header must be a JSON object, got {}", path,
                           header.type_name());
  SEMSKIP_THROW_IF_NOT_MSG(repeated_key.empty(), "{}: safetensors header names tensor '{}' more than once", path,
                           repeated_key);

  const uint64_t data_size = file_size - 8 - header_len;
  struct Extent {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Extent> extents;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& e = it.value();
    if (name == "__metadata__") {
      SEMSKIP_THROW_IF_NOT_MSG(e.is_object(), "{}: '__metadata__' must be an object of strings", path);
      for (auto m = e.begin(); m != e.end(); ++m) {
        SEMSKIP_THROW_IF_NOT_MSG(m.value().is_string(),
                                 "{}: '__metadata__' entry '{}' must be a string, got {}", path, m.key(),
                                 m.value().type_name());
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = fmt::format("{}: tensor '{}'", path, name);
    SEMSKIP_THROW_IF_NOT_MSG(
        e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
        "{}: header entry must be an object with dtype, shape and data_offsets", what);
    SEMSKIP_THROW_IF_NOT_MSG(e["dtype"].is_string(), "{}: dtype must be a string", what);
    SafetensorsEntry v;
    v.dtype = e["dtype"].get<std::string>();
    const size_t itemsize = safetensors_dtype_size(v.dtype, what);

    const json& shape = e["shape"];
    SEMSKIP_THROW_IF_NOT_MSG(shape.is_array(), "{}: shape must be a list of integers", what);
    // numel × itemsize computed with overflow checks: a lying header must not wrap around.
    uint64_t nbytes = itemsize;
    for (const json& d : shape) {
      // nlohmann reads non-negative integer literals as unsigned, negative ones as signed.
      SEMSKIP_THROW_IF_NOT_MSG(d.is_number_unsigned(), "{}: shape {} must hold non-negative integers", what,
                               shape.dump());
      const uint64_t extent = d.get<uint64_t>();
      SEMSKIP_THROW_IF_NOT_MSG(extent <= uint64_t(std::numeric_limits<int64_t>::max()) &&
                                   !__builtin_mul_overflow(nbytes, extent, &nbytes),
                               "{}: shape {} is too large", what, shape.dump());
      v.shape.push_back(static_cast<int64_t>(extent));
    }

    const json& off = e["data_offsets"];
    SEMSKIP_THROW_IF_NOT_MSG(
        off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
        "{}: data_offsets must be two non-negative integers, got {}", what, off.dump());
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    SEMSKIP_THROW_IF_NOT_MSG(begin <= end, "{}: data_offsets [{}, {}] end before they begin", what, begin,
                             end);
    SEMSKIP_THROW_IF_NOT_MSG(
        end <= data_size,
        "{}: data_offsets [{}, {}] reach beyond the data section of {} bytes (truncated file?)", what, begin,
        end, data_size);
    SEMSKIP_THROW_IF_NOT_MSG(end - begin == nbytes,
                             "{}: data_offsets [{}, {}] span {} bytes, but dtype {} with shape [{}] needs {}",
                             what, begin, end, end - begin, v.dtype, fmt::join(v.shape, ", "), nbytes);
    v.begin = begin;
    v.end = end;
    auto inserted = out.tensors.emplace(name, std::move(v));
    if (nbytes > 0) extents.push_back({begin, end, &inserted.first->first});
  }

  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < extents.size(); ++i) {
    const Extent &a = extents[i - 1], &b = extents[i];
    SEMSKIP_THROW_IF_NOT_MSG(b.begin >= a.end, "{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", path,
                             *a.name, a.begin, a.end, *b.name, b.begin, b.end);
  }
  return out;
}

}  // namespace semskip
