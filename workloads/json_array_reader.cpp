#include "workloads/json_array_reader.h"

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace semskip {

namespace {
constexpr size_t kChunkBytes = 1 << 20;

bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

JsonArrayReader::JsonArrayReader(const std::string& path)
    : path_(path), in_(path, std::ios::binary), buf_(new char[kChunkBytes]) {
  SEMSKIP_THROW_IF_NOT_MSG(in_.is_open(), "{}: cannot open file ({})", path, std::strerror(errno));
}

void JsonArrayReader::fill() {
  in_.read(buf_.get(), kChunkBytes);
  buf_len_ = static_cast<size_t>(in_.gcount());
  buf_pos_ = 0;
  SEMSKIP_THROW_IF_NOT_MSG(!in_.bad(), "{}: read error near line {}", path_, line_);
  if (buf_len_ == 0) eof_ = true;
}

int JsonArrayReader::peek() {
  if (buf_pos_ == buf_len_) {
    if (eof_) return -1;
    fill();
    if (eof_) return -1;
  }
  return static_cast<unsigned char>(buf_[buf_pos_]);
}

int JsonArrayReader::get() {
  int c = peek();
  if (c >= 0) {
    ++buf_pos_;
    if (c == '\n') ++line_;
  }
  return c;
}

void JsonArrayReader::skip_whitespace() {
  while (is_space(peek())) get();
}

bool JsonArrayReader::next(std::string& element) {
  if (state_ == State::done) return false;
  if (state_ == State::start) {
    skip_whitespace();
    if (peek() == 0xEF) {  // UTF-8 byte-order mark
      get(), get(), get();
      skip_whitespace();
    }
    int c = get();
    SEMSKIP_THROW_IF_NOT_MSG(c == '[', "{}:{}: expected a JSON array ('['), found {}", path_, line_,
                             c < 0 ? std::string("end of file") : fmt::format("'{}'", char(c)));
    state_ = State::first;
  }
  skip_whitespace();
  int c = peek();
  if (c == ']') {
    get();
    skip_whitespace();
    SEMSKIP_THROW_IF_NOT_MSG(peek() < 0, "{}:{}: data after the closing ']' of the array", path_,
                             line_);
    state_ = State::done;
    return false;
  }
  if (state_ == State::after_element) {
    SEMSKIP_THROW_IF_NOT_MSG(c == ',', "{}:{}: expected ',' or ']' between array elements, found {}",
                             path_, line_,
                             c < 0 ? std::string("end of file") : fmt::format("'{}'", char(c)));
    get();
    skip_whitespace();
    c = peek();
    SEMSKIP_THROW_IF_NOT_MSG(c >= 0 && c != ']', "{}:{}: expected an element after ','", path_,
                             line_);
  }
  SEMSKIP_THROW_IF_NOT_MSG(c >= 0, "{}:{}: unterminated array (no closing ']')", path_, line_);

  element.clear();
  element_line_ = line_;
  int depth = 0;
  bool in_string = false;
  while (true) {
    c = peek();
    if (c < 0) {
      SEMSKIP_THROW_MSG("{}:{}: the element starting on line {} is not terminated at the end of "
                        "the file",
                        path_, line_, element_line_);
    }
    if (!in_string && depth == 0 && (c == ',' || c == ']' || is_space(c)) && !element.empty())
      break;  // end of a scalar element, or just after a closed object/array
    get();
    element.push_back(static_cast<char>(c));
    if (in_string) {
      if (c == '\\') {
        int e = get();
        if (e < 0) continue;  // reported as unterminated above
        element.push_back(static_cast<char>(e));
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
      SEMSKIP_THROW_IF_NOT_MSG(depth >= 0, "{}:{}: unbalanced '{}'", path_, line_, char(c));
      if (depth == 0) break;
    }
  }
  state_ = State::after_element;
  return true;
}

}  // namespace semskip
