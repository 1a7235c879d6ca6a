#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace semskip::byte_level {

namespace {

struct Tables {
  std::array<std::string, 256> byte_char;  // byte -> its character, UTF-8
  std::array<int16_t, 512> char_byte;      // code point (all below 512) -> byte, -1 if none

  Tables() {
    char_byte.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the other 68 are shifted to U+0100.. in
    // byte order (GPT-2 encoder.py bytes_to_unicode).
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(next++);
      utf8::append(byte_char[b], cp);
      char_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_to_char(uint8_t b) { return tables().byte_char[b]; }

void encode(std::string_view bytes, std::string& out) {
  const Tables& t = tables();
  for (char c : bytes) out.append(t.byte_char[static_cast<uint8_t>(c)]);
}

void decode_token(std::string_view token, std::string& out) {
  const Tables& t = tables();
  const size_t start = out.size();
  size_t pos = 0;
  while (pos < token.size()) {
    size_t len = 0;
    const char32_t cp = utf8::decode(token, pos, len);
    if (cp >= 512 || t.char_byte[cp] < 0) {
      out.resize(start);
      out.append(token);
      return;
    }
    out.push_back(static_cast<char>(t.char_byte[cp]));
    pos += len;
  }
}

}  // namespace semskip::byte_level
