#pragma once
// Reads a text file line by line with 1-based line numbers, without holding the file.

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

namespace semskip {

class LineReader {
 public:
  // semskip::Error naming the path when it cannot be opened.
  explicit LineReader(const std::string& path);

  // The next line without its "\n" (and "\r\n"); false at the end of the file.
  bool next(std::string& line);
  // Line number of the line last returned.
  int64_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<char[]> buffer_;  // larger stream buffer: fewer read calls on big files
  std::ifstream in_;
  int64_t line_number_ = 0;
};

}  // namespace semskip
