#pragma once
// UTF-8 helpers for the tokenizer: validation, code point iteration, lossy conversion as Rust's
// String::from_utf8_lossy does it, and the two character classes the added-token rules use.

#include <cstddef>
#include <string>
#include <string_view>

namespace semskip::utf8 {

// Byte offset of the first invalid sequence, or s.size() when s is valid UTF-8.
size_t find_invalid(std::string_view s);

// Decodes the code point that starts at s[pos] (s valid UTF-8); sets len to its byte length.
char32_t decode(std::string_view s, size_t pos, size_t& len);

// Byte length of the sequence whose lead byte is b (1 for ASCII and for invalid lead bytes).
inline size_t sequence_length(unsigned char b) {
  return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

void append(std::string& out, char32_t cp);

// Bytes to text, each maximal invalid subsequence replaced by one U+FFFD (the Unicode
// "substitution of maximal subparts" practice, which Rust's from_utf8_lossy follows).
std::string lossy(std::string_view bytes);

// Unicode White_Space (Rust regex `\s`, Oniguruma `\s` on UTF-8).
bool is_whitespace(char32_t cp);
// Rust regex `\w`: Alphabetic, marks, decimal digits, connector punctuation, Join_Control.
bool is_word(char32_t cp);

}  // namespace semskip::utf8
