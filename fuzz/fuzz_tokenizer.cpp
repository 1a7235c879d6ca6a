// libFuzzer target: the byte-level BPE tokenizer of the embedded tiny-dense model (the
// qwen2-style tokenizer.json: NFC, the Split regex, added tokens). encode() of any bytes must
// not crash; for valid UTF-8 that is already in NFC the tokenizer is lossless, so
// decode(encode(x)) must give x back exactly. Ids must lie inside the vocabulary.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <utf8proc.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace {

const semskip::Tokenizer& tokenizer() {
  static const semskip::Tokenizer t =
      semskip::Tokenizer::from_file(SEMSKIP_SOURCE_DIR "/models/tiny-dense/tokenizer.json");
  return t;
}

// Valid UTF-8 whose NFC form is itself (utf8proc's own decoder, independent of the tokenizer's).
bool nfc_stable_utf8(const std::string& s) {
  utf8proc_int32_t cp = 0;
  for (size_t i = 0; i < s.size();) {
    const utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                                utf8proc_ssize_t(s.size() - i), &cp);
    if (n <= 0 || cp == 0) return false;
    i += size_t(n);
  }
  utf8proc_uint8_t* nfc = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  if (nfc == nullptr) return false;
  const bool same = std::strcmp(reinterpret_cast<const char*>(nfc), s.c_str()) == 0;
  std::free(nfc);
  return same;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const semskip::Tokenizer& tok = tokenizer();
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text);
  } catch (const semskip::Error&) {
    // Invalid UTF-8 may be refused with a message; valid text never is.
    if (nfc_stable_utf8(text)) std::abort();
    return 0;
  }
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  if (nfc_stable_utf8(text) && tok.decode(ids) != text) std::abort();
  return 0;
}
