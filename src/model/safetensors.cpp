#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

}  // namespace

at::ScalarType safetensors_scalar_type(const std::string& dtype, const std::string& what) {
  return dtype_info(dtype, what).type;
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
  SafetensorsHeader header = parse_safetensors_header(base, file_size, path);
  const uint8_t* data = base + 8 + header.header_len;
  metadata_ = std::move(header.metadata);
  for (auto& [name, e] : header.tensors) {
    TensorView v;
    v.name = name;
    v.dtype = std::move(e.dtype);
    v.shape = std::move(e.shape);
    v.data = data + e.begin;
    v.nbytes = static_cast<size_t>(e.end - e.begin);
    tensors_.emplace(name, std::move(v));
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
  return over_mapping(v, v.data, v.nbytes, v.shape);
}

at::Tensor SafetensorsFile::tensor_rows(const std::string& name, int64_t first, int64_t count) const {
  const TensorView& v = view(name);
  SEMSKIP_THROW_IF_NOT_MSG(!v.shape.empty(), "{}: tensor '{}' is a scalar; it has no rows to slice", path_, name);
  SEMSKIP_THROW_IF_NOT_MSG(first >= 0 && count >= 0 && first + count <= v.shape[0],
                           "{}: tensor '{}': rows [{}, {}) are outside its {} rows", path_, name, first, first + count,
                           v.shape[0]);
  const size_t row_bytes = v.shape[0] > 0 ? v.nbytes / static_cast<size_t>(v.shape[0]) : 0;
  std::vector<int64_t> shape = v.shape;
  shape[0] = count;
  return over_mapping(v, v.data + static_cast<size_t>(first) * row_bytes, static_cast<size_t>(count) * row_bytes,
                      shape);
}

at::Tensor SafetensorsFile::over_mapping(const TensorView& v, const uint8_t* data, size_t nbytes,
                                         const std::vector<int64_t>& shape) const {
  const std::string what = fmt::format("{}: tensor '{}'", path_, v.name);
  const DTypeInfo& d = dtype_info(v.dtype, what);
  if (d.type == at::kBool) {
    // Any byte but 0 and 1 is not a bool ATen can hold.
    for (size_t i = 0; i < nbytes; ++i)
      SEMSKIP_THROW_IF_NOT_MSG(data[i] <= 1, "{}: BOOL byte {} holds {}, not 0 or 1", what,
                               i + static_cast<size_t>(data - v.data), int(data[i]));
  }
  auto options = at::TensorOptions().dtype(d.type).device(at::kCPU);
  if (reinterpret_cast<uintptr_t>(data) % d.size != 0) {
    at::Tensor copy = at::empty(shape, options);
    if (nbytes) std::memcpy(copy.data_ptr(), data, nbytes);
    return copy;
  }
  std::shared_ptr<void> keep = mapping_;
  // from_blob wants a mutable pointer; PROT_READ makes any write fault instead of corrupting.
  return at::from_blob(
      const_cast<uint8_t*>(data), shape, [keep](void*) mutable { keep.reset(); }, options);
}

}  // namespace semskip
