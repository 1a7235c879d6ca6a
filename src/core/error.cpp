#include "core/error.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace semskip {

namespace {
const char* base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

// The log goes to stderr, so that what a command prints on stdout (JSON, tables) stays clean.
void use_stderr_logger() {
  static const bool done = [] {
    spdlog::set_default_logger(spdlog::stderr_color_mt("semskip"));
    return true;
  }();
  (void)done;
}
}  // namespace

void throw_error(const std::string& msg, const char* func, const char* file, int line) {
  // The user sees the message; the developer finds where it came from in the debug log.
  spdlog::debug("[{} at {}:{}] {}", func, base_name(file), line, msg);
  throw Error(msg);
}

void abort_invariant(const char* cond, const char* func, const char* file, int line) {
  std::fprintf(stderr, "semskip: internal error: '%s' failed in %s at %s:%d\n", cond, func,
               base_name(file), line);
  std::abort();
}

void set_log_level(const std::string& level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  // from_str gives `off` for every name it does not know; only "off" itself means off.
  if (parsed == spdlog::level::off && level != "off") {
    throw Error(fmt::format("log level '{}': expected trace, debug, info, warn, error, critical or off", level));
  }
  use_stderr_logger();
  spdlog::set_level(parsed);
}

void set_log_level_from_env() {
  const char* env = std::getenv("SEMSKIP_LOG_LEVEL");
  if (env != nullptr && *env != '\0') {
    try {
      set_log_level(env);
    } catch (const Error& e) {
      throw Error(fmt::format("environment variable SEMSKIP_LOG_LEVEL: {}", e.what()));
    }
  } else {
    use_stderr_logger();
    spdlog::set_level(spdlog::level::warn);
  }
}

}  // namespace semskip
