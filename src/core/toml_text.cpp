#include "core/toml_text.h"

#include <cstdint>

#include "core/error.h"

namespace semskip {

namespace {

// The code point of the UTF-8 sequence at text[i], or -1 when it is not one.
int64_t code_point_at(std::string_view text, size_t i) {
  const auto b = static_cast<unsigned char>(text[i]);
  const int n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
  if (n == 0 || i + static_cast<size_t>(n) > text.size()) return -1;
  int64_t cp = b & (0x3F >> (n - 1));
  for (int k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(text[i + static_cast<size_t>(k)]);
    if ((c & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (c & 0x3F);
  }
  return cp;
}

// A backslash in a basic string: toml++ 3.3 classifies the character after it (and, after a
// line-ending backslash of a multi-line string, the first character past the whitespace it
// trims) with the same whitespace classifier, which has no case for several non-ASCII ranges
// (U+00A1..U+0499, U+2BDE..U+2FD7, U+FC06..U+FEFE: found by fuzz/fuzz_run_toml.cpp). A
// non-ASCII character there is refused: after a backslash it is no valid escape anyway, and
// after a line-ending backslash an ASCII character (or no backslash) says the same.
void refuse_after_backslash(std::string_view text, size_t i, bool multi_line, const std::string& file, int64_t line,
                            int64_t column) {
  const size_t n = text.size();
  if (i + 1 < n && static_cast<unsigned char>(text[i + 1]) >= 0x80) {
    SEMSKIP_THROW_MSG("{}:{}:{}: a backslash before a non-ASCII character (no TOML escape; write the character "
                      "itself, or \\uXXXX)",
                      file, line, column);
  }
  size_t j = i + 1;
  while (j < n && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r')) ++j;
  if (j > i + 1 && j < n && static_cast<unsigned char>(text[j]) >= 0x80) {
    // The parser reads whitespace after a backslash as the start of a line ending.
    SEMSKIP_THROW_MSG("{}:{}:{}: a backslash followed by whitespace and a non-ASCII character (no TOML escape; "
                      "a backslash before whitespace must end the line)",
                      file, line, column);
  }
  if (!multi_line) return;
  if (j >= n || text[j] != '\n') return;  // not a line-ending backslash
  while (j < n && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n')) ++j;
  if (j < n && static_cast<unsigned char>(text[j]) >= 0x80) {
    SEMSKIP_THROW_MSG("{}:{}:{}: a line-ending backslash followed by a non-ASCII character in a multi-line "
                      "string (not read reliably by the TOML parser; start the continued line with an ASCII "
                      "character or drop the backslash)",
                      file, line, column);
  }
}

// Code points toml++ 3.3's whitespace classifier has no case for (its table's blocks 0, 11 and
// 63 of 1018 code points from U+00A0, less the three it names): undefined behaviour wherever the
// parser asks whether such a character is whitespace, which its tokenizer does in more places
// than a pre-check can follow (after backslashes, inside malformed values).
bool unclassifiable(int64_t cp) {
  if (cp == 0xA0 || cp == 0x3000 || cp == 0xFEFF) return false;
  return (cp >= 0xA0 && cp <= 0x499) || (cp >= 0x2C5E && cp <= 0x3057) || (cp >= 0xFB26 && cp <= 0xFEFF);
}

}  // namespace

void check_toml_text(std::string_view text, const std::string& file) {
  // States of a small lexer: only where strings and comments begin and end matters.
  enum class In { code, comment, basic, literal, ml_basic, ml_literal };
  In in = In::code;
  int64_t line = 1, column = 0;
  // The last character of code before this one, spaces aside ('\n' at a line's start). A quote
  // opens a string only where TOML lets a string begin (a key, a value, an array or inline
  // table item): toml++ reads a quote glued to a bare value (`a = 0"é"`) as part of that value.
  char prev = '\n';
  auto opens_string = [&prev] {
    return prev == '\n' || prev == '=' || prev == '[' || prev == ',' || prev == '{' || prev == '.';
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++column;  // continuation bytes are no column
    if (c == '\n') {
      ++line;
      column = 0;
      if (in == In::comment || in == In::basic || in == In::literal) in = In::code;  // toml++ reports the rest
      prev = '\n';
      continue;
    }
    const std::string_view rest = text.substr(i);
    if (in != In::code && static_cast<unsigned char>(c) >= 0xC0) {
      const int64_t cp = code_point_at(text, i);
      if (cp >= 0 && unclassifiable(cp))
        SEMSKIP_THROW_MSG("{}:{}:{}: character U+{:04X}: the TOML parser of this build (toml++ 3.3) cannot read "
                          "characters U+00A1..U+0499, U+2C5E..U+3057 and U+FB26..U+FEFE reliably; in a string write "
                          "it as \\u{:04X}, in a comment leave it out",
                          file, line, column, cp, cp);
    }
    switch (in) {
      case In::code:
        if (c == '#') {
          in = In::comment;
        } else if (opens_string() && rest.substr(0, 3) == "\"\"\"") {
          in = In::ml_basic;
          i += 2, column += 2;
        } else if (opens_string() && rest.substr(0, 3) == "'''") {
          in = In::ml_literal;
          i += 2, column += 2;
        } else if (opens_string() && c == '"') {
          in = In::basic;
        } else if (opens_string() && c == '\'') {
          in = In::literal;
        } else if (static_cast<unsigned char>(c) >= 0x80) {
          const int64_t cp = code_point_at(text, i);
          if (cp < 0)
            SEMSKIP_THROW_MSG("{}:{}:{}: byte 0x{:02X} is not UTF-8 (TOML files are UTF-8 text)", file, line, column,
                              static_cast<unsigned char>(c));
          SEMSKIP_THROW_MSG("{}:{}:{}: character U+{:04X} outside a quoted string or a comment (TOML keys and bare "
                            "values are ASCII; quote the value: key = \"...\")",
                            file, line, column, cp);
        }
        if (in == In::code && c != ' ' && c != '\t') prev = c;
        break;
      case In::basic:
      case In::ml_basic:
        if (c == '\\') refuse_after_backslash(text, i, in == In::ml_basic, file, line, column);
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          ++i, ++column;  // an escaped character, whatever it is
        } else if (in == In::basic && c == '"') {
          in = In::code;
          prev = '"';
        } else if (in == In::ml_basic && rest.substr(0, 3) == "\"\"\"") {
          // Up to two more quotes belong to the string's content ("""a""""" is a"").
          i += 2, column += 2;
          while (i + 1 < text.size() && text[i + 1] == '"') ++i, ++column;
          in = In::code;
          prev = '"';
        }
        break;
      case In::literal:
        if (c == '\'') {
          in = In::code;
          prev = '\'';
        }
        break;
      case In::ml_literal:
        if (rest.substr(0, 3) == "'''") {
          i += 2, column += 2;
          while (i + 1 < text.size() && text[i + 1] == '\'') ++i, ++column;
          in = In::code;
          prev = '\'';
        }
        break;
      case In::comment:
        break;
    }
  }
}

}  // namespace semskip
