#pragma once
// Streams the elements of a top-level JSON array ("[ {...}, {...} ]") one at a time as text,
// so a 1 GB ShareGPT file is never held as one document: the reader tracks only string and
// nesting state; each element is then parsed on its own.

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

namespace semskip {

class JsonArrayReader {
 public:
  // semskip::Error naming the path when it cannot be opened.
  explicit JsonArrayReader(const std::string& path);

  // The next element's JSON text; false after the closing ']'. semskip::Error naming file and
  // line when the array's structure is broken (no '[', a missing ',', an unterminated element,
  // data after ']'); an element that is itself invalid JSON is left for its parser to report.
  bool next(std::string& element);
  // 1-based line on which the element last returned starts.
  int64_t element_line() const { return element_line_; }
  const std::string& path() const { return path_; }

 private:
  int get();   // next byte or -1 at the end; counts lines
  int peek();
  void skip_whitespace();
  void fill();

  std::string path_;
  std::ifstream in_;
  std::unique_ptr<char[]> buf_;
  size_t buf_len_ = 0;
  size_t buf_pos_ = 0;
  bool eof_ = false;
  int64_t line_ = 1;
  int64_t element_line_ = 0;
  enum class State { start, first, after_element, done } state_ = State::start;
};

}  // namespace semskip
