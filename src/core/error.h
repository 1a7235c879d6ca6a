#pragma once
// Two kinds of errors (docs/conventions.md rule 10): bad input throws semskip::Error whose message
// is for the user (the file, the field, the problem); where in the sources it was detected goes
// to the debug log (set_log_level("debug"), or SEMSKIP_LOG_LEVEL=debug). A broken invariant aborts.

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace semskip {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws Error(msg); logs "[func at file:line] msg" at debug level first.
[[noreturn]] void throw_error(const std::string& msg, const char* func, const char* file, int line);
[[noreturn]] void abort_invariant(const char* cond, const char* func, const char* file, int line);

// Level of the process's log (spdlog's default logger, on stderr): trace, debug, info, warn,
// error, critical or off. semskip::Error naming the accepted names for anything else.
void set_log_level(const std::string& level);
// set_log_level($SEMSKIP_LOG_LEVEL) when that variable is set and not empty; "warn" otherwise.
void set_log_level_from_env();

}  // namespace semskip

// Throws semskip::Error with a fmt-formatted message.
#define SEMSKIP_THROW_MSG(...) \
  ::semskip::throw_error(fmt::format(__VA_ARGS__), __func__, __FILE__, __LINE__)

// Throws semskip::Error with a fmt-formatted message when cond is false.
#define SEMSKIP_THROW_IF_NOT_MSG(cond, ...)  \
  do {                                       \
    if (!(cond)) SEMSKIP_THROW_MSG(__VA_ARGS__); \
  } while (0)

// Aborts (a bug, not bad input) when cond is false.
#define SEMSKIP_ASSERT(cond)                                                   \
  do {                                                                         \
    if (!(cond)) ::semskip::abort_invariant(#cond, __func__, __FILE__, __LINE__); \
  } while (0)
