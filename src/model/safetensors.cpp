#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"

// Safetensors stores numbers little-endian; tensors are handed out without byte swapping.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "semskip reads safetensors in place and needs a little-endian host"
#endif

namespace semskip {

using nlohmann::json;

namespace {

struct DTypeInfo {
  const char* name;
  at::ScalarType type;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

const DTypeInfo& dtype_info(const std::string& dtype, const std::string& what) {
  for (const DTypeInfo& d : kDTypes)
    if (dtype == d.name) return d;
  SEMSKIP_THROW_MSG(
      "{}: unsupported dtype '{}' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, "
      "U8, BOOL)",
      what, dtype);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

}  // namespace

at::ScalarType safetensors_scalar_type(const std::string& dtype, const std::string& what) {
  return dtype_info(dtype, what).type;
}

size_t safetensors_dtype_size(const std::string& dtype, const std::string& what) {
  return dtype_info(dtype, what).size;
}

const char* safetensors_dtype_name(at::ScalarType t, const std::string& what) {
  for (const DTypeInfo& d : kDTypes)
    if (d.type == t) return d.name;
  SEMSKIP_THROW_MSG("{}: ATen dtype {} has no safetensors equivalent that semskip writes", what,
                    c10::toString(t));
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SEMSKIP_THROW_IF_NOT_MSG(fd >= 0, "{}: cannot open safetensors file: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    SEMSKIP_THROW_MSG("{}: not a regular file", path);
  }
  const size_t file_size = static_cast<size_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    SEMSKIP_THROW_MSG("{}: truncated safetensors file: {} bytes, fewer than the 8-byte header length", path,
                      file_size);
  }
  void* addr = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);  // the mapping keeps the file's pages reachable
  SEMSKIP_THROW_IF_NOT_MSG(addr != MAP_FAILED, "{}: mmap failed: {}", path, std::strerror(map_errno));
  map_ = addr;
  map_size_ = file_size;
  mapping_ = std::shared_ptr<void>(addr, [file_size](void* p) { ::munmap(p, file_size); });

  const auto* base = static_cast<const uint8_t*>(map_);
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  SEMSKIP_THROW_IF_NOT_MSG(header_len <= file_size - 8,
                           "{}: header length {} exceeds the {} bytes after it in the file (truncated "
                           "file, or not a safetensors file)",
                           path, header_len, file_size - 8);
  SEMSKIP_THROW_IF_NOT_MSG(header_len >= 2, "{}: header length {} is too short for a JSON header", path,
                           header_len);
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
  }
  SEMSKIP_THROW_IF_NOT_MSG(header.is_object(), "{}: safetensors header must be a JSON object, got {}", path,
                           header.type_name());
  SEMSKIP_THROW_IF_NOT_MSG(repeated_key.empty(), "{}: safetensors header names tensor '{}' more than once", path,
                           repeated_key);

  const uint8_t* data = base + 8 + header_len;
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
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = fmt::format("{}: tensor '{}'", path, name);
    SEMSKIP_THROW_IF_NOT_MSG(
        e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
        "{}: header entry must be an object with dtype, shape and data_offsets", what);
    SEMSKIP_THROW_IF_NOT_MSG(e["dtype"].is_string(), "{}: dtype must be a string", what);
    TensorView v;
    v.name = name;
    v.dtype = e["dtype"].get<std::string>();
    const size_t itemsize = dtype_info(v.dtype, what).size;

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
                             "{}: data_offsets [{}, {}] span {} bytes, but dtype {} with shape {} needs {}",
                             what, begin, end, end - begin, v.dtype, shape_str(v.shape), nbytes);
    v.data = data + begin;
    v.nbytes = static_cast<size_t>(nbytes);
    auto inserted = tensors_.emplace(name, std::move(v));
    if (nbytes > 0) extents.push_back({begin, end, &inserted.first->first});
  }

  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < extents.size(); ++i) {
    const Extent &a = extents[i - 1], &b = extents[i];
    SEMSKIP_THROW_IF_NOT_MSG(b.begin >= a.end, "{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", path,
                             *a.name, a.begin, a.end, *b.name, b.begin, b.end);
  }
}

SafetensorsFile::~SafetensorsFile() = default;

bool SafetensorsFile::has(const std::string& name) const { return tensors_.count(name) > 0; }

const TensorView& SafetensorsFile::view(const std::string& name) const {
  auto it = tensors_.find(name);
  SEMSKIP_THROW_IF_NOT_MSG(it != tensors_.end(), "{}: no tensor named '{}' ({} tensors in the file)", path_,
                           name, tensors_.size());
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& kv : tensors_) out.push_back(kv.first);
  return out;
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorView& v = view(name);
  const std::string what = fmt::format("{}: tensor '{}'", path_, name);
  const DTypeInfo& d = dtype_info(v.dtype, what);
  if (d.type == at::kBool) {
    // Any byte but 0 and 1 is not a bool ATen can hold.
    for (size_t i = 0; i < v.nbytes; ++i)
      SEMSKIP_THROW_IF_NOT_MSG(v.data[i] <= 1, "{}: BOOL byte {} holds {}, not 0 or 1", what, i,
                               int(v.data[i]));
  }
  auto options = at::TensorOptions().dtype(d.type).device(at::kCPU);
  if (reinterpret_cast<uintptr_t>(v.data) % d.size != 0) {
    at::Tensor copy = at::empty(v.shape, options);
    if (v.nbytes) std::memcpy(copy.data_ptr(), v.data, v.nbytes);
    return copy;
  }
  std::shared_ptr<void> keep = mapping_;
  // from_blob wants a mutable pointer; PROT_READ makes any write fault instead of corrupting.
  return at::from_blob(
      const_cast<uint8_t*>(v.data), v.shape, [keep](void*) mutable { keep.reset(); }, options);
}

}  // namespace semskip
