// write_safetensors (declared in safetensors.h): the layout the Hugging Face safetensors
// library writes, so that files made here load there too.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/safetensors.h"

namespace semskip {

namespace {

struct Entry {
  std::string name;
  at::Tensor data;  // CPU, contiguous
  size_t itemsize;
};

void write_all(std::FILE* f, const void* p, size_t n, const std::string& tmp) {
  if (n && std::fwrite(p, 1, n, f) != n) SEMSKIP_THROW_MSG("{}: write failed: {}", tmp, std::strerror(errno));
}

}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<Entry> entries;
  for (const auto& kv : tensors) {
    const std::string what = fmt::format("{}: tensor '{}'", path, kv.first);
    SEMSKIP_THROW_IF_NOT_MSG(!kv.first.empty() && kv.first != "__metadata__", "{}: invalid tensor name '{}'",
                             path, kv.first);
    SEMSKIP_THROW_IF_NOT_MSG(kv.second.defined(), "{} is undefined", what);
    const char* dtype = safetensors_dtype_name(kv.second.scalar_type(), what);
    entries.push_back({kv.first, kv.second.cpu().contiguous(), safetensors_dtype_size(dtype, what)});
  }
  // Larger items first, then by name (as the reference library orders them): every tensor
  // then starts at a multiple of its item size, so readers can use it in place.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.itemsize > b.itemsize; });

  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const Entry& e : entries) {
    uint64_t nbytes = static_cast<uint64_t>(e.data.numel()) * e.itemsize;
    header[e.name] = {{"dtype", safetensors_dtype_name(e.data.scalar_type(), path)},
                      {"shape", e.data.sizes().vec()},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  // Spaces pad the header so that the data section starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  SEMSKIP_THROW_IF_NOT_MSG(f, "{}: cannot create: {}", tmp, std::strerror(errno));
  try {
    write_all(f, &header_len, 8, tmp);  // little-endian host (checked in safetensors.cpp)
    write_all(f, text.data(), text.size(), tmp);
    for (const Entry& e : entries) write_all(f, e.data.data_ptr(), e.data.numel() * e.itemsize, tmp);
    SEMSKIP_THROW_IF_NOT_MSG(std::fflush(f) == 0, "{}: write failed: {}", tmp, std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    SEMSKIP_THROW_MSG("{}: write failed: {}", tmp, std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    SEMSKIP_THROW_MSG("{}: cannot rename {} into place: {}", path, tmp, std::strerror(err));
  }
}

}  // namespace semskip
