#include "core/error.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace semskip {

namespace {
const char* base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}
}  // namespace

void throw_error(const std::string& msg, const char* func, const char* file, int line) {
  // The message leads, for the user; the location follows, for the developer.
  throw Error(fmt::format("{} [{} at {}:{}]", msg, func, base_name(file), line));
}

void abort_invariant(const char* cond, const char* func, const char* file, int line) {
  std::fprintf(stderr, "semskip: internal error: '%s' failed in %s at %s:%d\n", cond, func,
               base_name(file), line);
  std::abort();
}

}  // namespace semskip
