#pragma once
// GPT-2's byte-to-unicode mapping: every byte becomes one printable character, so that a BPE
// vocabulary over these characters covers any byte string (no unknown tokens).

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace semskip::byte_level {

// The character (UTF-8, 1 or 2 bytes) that stands for byte b.
const std::string& byte_to_char(uint8_t b);

// Appends the byte-level form of `bytes` to out.
void encode(std::string_view bytes, std::string& out);

// Appends the bytes behind token `token` to out, as HF's ByteLevel decoder does: if every
// character of the token is a byte character, their bytes; otherwise the token's own UTF-8
// (added tokens such as "<|im_end|>" take either path to the same bytes).
void decode_token(std::string_view token, std::string& out);

// The GPT-2 pre-tokenizer regex that ByteLevel applies when use_regex is true.
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace semskip::byte_level
