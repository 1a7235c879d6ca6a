#pragma once
// The normalizer of a tokenizer.json: null, one of the Unicode normal forms, or a Sequence of
// them (utf8proc does the Unicode work).

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace semskip {

class Normalizer {
 public:
  enum class Form { kNfc, kNfd, kNfkc, kNfkd };

  // From the "normalizer" value (null allowed); semskip::Error naming `where` for a type we do
  // not implement.
  static Normalizer from_json(const nlohmann::json& j, const std::string& where);

  bool is_identity() const { return forms_.empty(); }
  // text: valid UTF-8.
  std::string apply(std::string_view text) const;
  // Same, without a copy when nothing changes: a view of `text` or of `storage`.
  std::string_view apply(std::string_view text, std::string& storage) const;

 private:
  std::vector<Form> forms_;  // applied in order
};

}  // namespace semskip
