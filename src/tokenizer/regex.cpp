#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace semskip {

namespace {

// Unicode White_Space, as the body of a character class.
constexpr const char* kWhiteSpaceItems =
    R"(\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};

}  // namespace

struct Regex::Impl {
  pcre2_code* code = nullptr;
  ~Impl() { pcre2_code_free(code); }
};

Regex::Regex(const std::string& pattern, const std::string& where) : impl_(std::make_unique<Impl>()) {
  const std::string translated = onig_compatible(pattern);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    SEMSKIP_THROW_MSG("{}: bad regex /{}/: {} (at offset {} of the PCRE2 form /{}/)", where, pattern,
                      reinterpret_cast<const char*>(msg), err_offset, translated);
  }
  // JIT is an optimisation only: without it (some platforms) the interpreter gives the same matches.
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(impl_->code, nullptr));
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t search_from = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  // PCRE2 checks the whole subject's UTF-8 on every call unless told not to; once is enough.
  uint32_t options = 0;
  while (search_from <= text.size()) {
    const int rc = pcre2_match(impl_->code, subject, text.size(), search_from, options, md.get(), nullptr);
    options = PCRE2_NO_UTF_CHECK;
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      SEMSKIP_THROW_MSG("regex match failed: {}", reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t begin = ov[0], end = ov[1];
    if (begin == end && have_last && last_match_end == end) {
      // Step over one character so that an empty match cannot repeat forever.
      search_from += search_from < text.size()
                         ? utf8::sequence_length(static_cast<unsigned char>(text[search_from]))
                         : 1;
      continue;
    }
    matches.emplace_back(begin, end);
    search_from = end;
    have_last = true;
    last_match_end = end;
  }
  return matches;
}

std::string Regex::onig_compatible(const std::string& pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  int class_depth = 0;  // Oniguruma allows nested classes ([a-z&&[^aeiou]])
  size_t i = 0;
  const size_t n = pattern.size();
  while (i < n) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < n) {
      const char d = pattern[i + 1];
      if (d == 'Q') {  // quoted literal text up to \E
        const size_t e = pattern.find("\\E", i + 2);
        const size_t stop = e == std::string::npos ? n : e + 2;
        out.append(pattern, i, stop - i);
        i = stop;
      } else if (d == 's') {
        out += class_depth > 0 ? std::string(kWhiteSpaceItems)
                               : "[" + std::string(kWhiteSpaceItems) + "]";
        i += 2;
      } else if (d == 'S' && class_depth == 0) {
        out += "[^" + std::string(kWhiteSpaceItems) + "]";
        i += 2;
      } else {
        out += c;
        out += d;
        i += 2;
      }
      continue;
    }
    if (c == '[') {
      if (class_depth > 0 && i + 1 < n && pattern[i + 1] == ':') {  // POSIX [:alpha:]
        const size_t e = pattern.find(":]", i + 2);
        const size_t stop = e == std::string::npos ? n : e + 2;
        out.append(pattern, i, stop - i);
        i = stop;
        continue;
      }
      ++class_depth;
      out += c;
      ++i;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i < n && pattern[i] == '^') out += pattern[i++];
      if (i < n && pattern[i] == ']') out += pattern[i++];
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
    ++i;
  }
  return out;
}

}  // namespace semskip
