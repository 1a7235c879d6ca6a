#include "workloads/line_reader.h"

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace semskip {

namespace {
constexpr size_t kBufferBytes = 1 << 20;
}

LineReader::LineReader(const std::string& path) : path_(path), buffer_(new char[kBufferBytes]) {
  in_.rdbuf()->pubsetbuf(buffer_.get(), kBufferBytes);
  in_.open(path, std::ios::binary);
  SEMSKIP_THROW_IF_NOT_MSG(in_.is_open(), "{}: cannot open file ({})", path, std::strerror(errno));
}

bool LineReader::next(std::string& line) {
  if (!std::getline(in_, line)) {
    SEMSKIP_THROW_IF_NOT_MSG(!in_.bad(), "{}: read error after line {}", path_, line_number_);
    return false;
  }
  ++line_number_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

}  // namespace semskip
