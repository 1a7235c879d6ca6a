#pragma once
// The text of a TOML file checked before toml++ parses it: a non-ASCII character outside a
// quoted string or a comment (`workload = données.txt`, an unquoted value) is invalid TOML, and
// toml++ 3.3 reaches an unreachable point on it (undefined behaviour, found by
// fuzz/fuzz_run_toml.cpp: its whitespace classifier has no case for U+00A1..U+0499,
// U+2BDE..U+2FD7 and U+FC06..U+FEFE). The same classifier reads what follows a backslash in a
// basic string, so a non-ASCII character there (after the backslash, after its trailing
// whitespace, or past a line-ending backslash's newlines) is refused too. Refused here with the
// file, line and column named, before the parser sees it.

#include <string>
#include <string_view>

namespace semskip {

// semskip::Error "<file>:<line>:<column>: ..." (1-based, columns in characters) for the first
// non-ASCII character outside strings and comments; nothing otherwise.
void check_toml_text(std::string_view text, const std::string& file);

}  // namespace semskip
