#pragma once
// Added tokens (tokenizer.json "added_tokens"): found in the text before pre-tokenization,
// leftmost-longest, with HF's single_word / lstrip / rstrip rules; `normalized` ones are
// looked for in the normalized text, the others in the raw text.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace semskip {

struct AddedToken {
  std::string content;
  std::string match_form;  // content, normalized when `normalized` (what is searched for)
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class AddedVocabulary {
 public:
  // A piece of text: an added token (id >= 0) or plain text to normalize/pre-tokenize (id -1).
  struct Segment {
    size_t begin, end;  // bytes of the searched text
    int32_t id;
  };

  // Registers a token (the last one with a given id wins, as in HF).
  void add(AddedToken token);
  // Builds the lookup tables; call once after the last add().
  void finalize();

  // Splits `text` on the tokens whose `normalized` flag equals `normalized_set`. Covers all of
  // `text`, in order; empty text gives no segments.
  std::vector<Segment> split(std::string_view text, bool normalized_set) const;

  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(std::string_view content) const;
  bool empty() const { return by_id_.empty(); }
  int32_t max_id() const;

 private:
  struct Matcher {
    // Token indices by the first byte of their match form, longest first.
    std::array<std::vector<size_t>, 256> by_first_byte;
    bool any = false;
  };
  void match_at(const Matcher& m, std::string_view text, size_t pos, size_t& token, size_t& len) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Matcher raw_, normalized_;
};

}  // namespace semskip
