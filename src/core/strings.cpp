#include "core/strings.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace semskip {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t parse_int(std::string_view s, std::string_view what) {
  std::string str = trim(s);
  SEMSKIP_THROW_IF_NOT_MSG(!str.empty(), "{}: expected an integer, got an empty value", what);
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(str.c_str(), &end, 10);
  // The end must be the string's own end: a NUL inside the text would otherwise hide a tail.
  SEMSKIP_THROW_IF_NOT_MSG(end == str.c_str() + str.size() && errno == 0, "{}: '{}' is not an integer", what, str);
  return static_cast<int64_t>(v);
}

double parse_double(std::string_view s, std::string_view what) {
  std::string str = trim(s);
  SEMSKIP_THROW_IF_NOT_MSG(!str.empty(), "{}: expected a number, got an empty value", what);
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(str.c_str(), &end);
  SEMSKIP_THROW_IF_NOT_MSG(end == str.c_str() + str.size() && errno == 0, "{}: '{}' is not a number", what, str);
  return v;
}

bool parse_bool(std::string_view s, std::string_view what) {
  std::string str = trim(s);
  if (str == "1" || str == "true" || str == "on" || str == "yes") return true;
  if (str == "0" || str == "false" || str == "off" || str == "no") return false;
  SEMSKIP_THROW_MSG("{}: '{}' is not a boolean (true/false)", what, str);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SEMSKIP_THROW_IF_NOT_MSG(in.good(), "{}: cannot open file ({})", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  SEMSKIP_THROW_IF_NOT_MSG(!in.bad(), "{}: read error", path);
  return ss.str();
}

}  // namespace semskip
