#pragma once
// A compiled PCRE2 pattern (UTF, Unicode properties, JIT when available) that finds all
// non-overlapping matches the way the Oniguruma regexes of HF `tokenizers` do.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace semskip {

class Regex {
 public:
  // semskip::Error naming `where` (the file) and PCRE2's message for a pattern that does not
  // compile. The pattern is written in Oniguruma syntax (HF's); see onig_compatible().
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Byte ranges [begin, end) of the matches in `text` (valid UTF-8), left to right. An empty
  // match right after the previous match is skipped, as Oniguruma's find_iter does.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

  // The pattern rewritten for PCRE2 where the two engines differ on the same syntax: PCRE2's
  // `\s` also matches U+180E, Oniguruma's is exactly White_Space, so `\s` and `\S` are
  // spelled out as the White_Space set.
  static std::string onig_compatible(const std::string& pattern);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semskip
