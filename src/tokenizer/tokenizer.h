#pragma once
// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json: NFC normalisation, the
// Split pre-tokenizer regex (PCRE2, Unicode properties), byte-to-unicode mapping, merges by
// rank, added/special tokens matched before pre-tokenization. Identical to HF `tokenizers`
// (add_special_tokens=False) on the fixtures. The post_processor, truncation and padding of
// the file are not applied; encode() is thread-safe (the BPE piece cache is shared).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace semskip {

class Tokenizer {
 public:
  // semskip::Error naming the file and the problem for unreadable or unsupported files.
  static Tokenizer from_file(const std::string& tokenizer_json_path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  std::vector<int32_t> encode(std::string_view text) const;
  // skip_special drops added tokens marked special.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;

  int32_t vocab_size() const;  // including added tokens: max id + 1
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's string as in the vocabulary (byte-level form for BPE tokens).
  const std::string& id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace semskip
