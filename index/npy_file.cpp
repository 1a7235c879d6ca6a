#include "index/npy_file.h"

#include <cstring>
#include <fstream>
#include <regex>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

uint32_t read_le(const std::string& bytes, size_t offset, size_t width) {
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return v;
}

}  // namespace

NpyMatrix read_npy_matrix(const std::string& path) {
  const std::string bytes = read_file(path);
  SEMSKIP_THROW_IF_NOT_MSG(bytes.size() >= 10 && bytes.compare(0, kMagicLen, kMagic, kMagicLen) == 0,
                           "{}: not a .npy file (no \\x93NUMPY magic)", path);
  const int major = static_cast<unsigned char>(bytes[6]);
  SEMSKIP_THROW_IF_NOT_MSG(major >= 1 && major <= 3, "{}: unsupported .npy version {}", path, major);
  const size_t len_width = major == 1 ? 2 : 4;
  const size_t header_len = read_le(bytes, 8, len_width);
  const size_t header_start = 8 + len_width;
  SEMSKIP_THROW_IF_NOT_MSG(bytes.size() >= header_start + header_len, "{}: truncated .npy header", path);
  const std::string header = bytes.substr(header_start, header_len);

  std::smatch m;
  SEMSKIP_THROW_IF_NOT_MSG(std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")),
                           "{}: .npy header has no 'descr': {}", path, header);
  const std::string descr = m[1];
  SEMSKIP_THROW_IF_NOT_MSG(descr == "<f4" || descr == "<f8",
                           "{}: dtype '{}' is not supported (need little-endian float32 '<f4' or "
                           "float64 '<f8')",
                           path, descr);
  SEMSKIP_THROW_IF_NOT_MSG(std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")),
                           "{}: .npy header has no 'fortran_order': {}", path, header);
  SEMSKIP_THROW_IF_NOT_MSG(m[1] == "False", "{}: Fortran-ordered arrays are not supported "
                                            "(save with numpy.ascontiguousarray)", path);
  SEMSKIP_THROW_IF_NOT_MSG(
      std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\))")),
      "{}: .npy array is not 2-D [rows, dim]: {}", path, header);

  NpyMatrix out;
  out.rows = parse_int(m[1].str(), path + ": shape");
  out.cols = parse_int(m[2].str(), path + ": shape");
  const size_t elem = descr == "<f4" ? 4 : 8;
  const size_t count = static_cast<size_t>(out.rows * out.cols);
  const size_t data_start = header_start + header_len;
  SEMSKIP_THROW_IF_NOT_MSG(bytes.size() >= data_start + count * elem,
                           "{}: file is shorter than its [{}, {}] {} data", path, out.rows,
                           out.cols, descr);
  out.data.resize(count);
  if (elem == 4) {
    std::memcpy(out.data.data(), bytes.data() + data_start, count * 4);
  } else {
    for (size_t i = 0; i < count; ++i) {
      double v;
      std::memcpy(&v, bytes.data() + data_start + i * 8, 8);
      out.data[i] = static_cast<float>(v);
    }
  }
  return out;
}

void write_npy_matrix(const std::string& path, int64_t rows, int64_t cols, const float* data) {
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
                                   rows, cols);
  // Magic + version + length + header + '\n' is padded to a multiple of 64 bytes.
  const size_t unpadded = kMagicLen + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  SEMSKIP_THROW_IF_NOT_MSG(out.good(), "{}: cannot be written", path);
  out.write(kMagic, kMagicLen);
  const char version[2] = {1, 0};
  out.write(version, 2);
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char len_le[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(len_le, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(rows * cols * 4));
  SEMSKIP_THROW_IF_NOT_MSG(out.good(), "{}: write failed", path);
}

}  // namespace semskip
