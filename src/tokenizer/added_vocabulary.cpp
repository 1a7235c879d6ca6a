#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace semskip {

namespace {

// The code point that ends text[0, pos) (text valid UTF-8, pos > 0 on a boundary).
char32_t last_char(std::string_view text, size_t pos) {
  size_t b = pos - 1;
  while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
  size_t len = 0;
  return utf8::decode(text, b, len);
}

// Start of the whitespace run that ends at `pos` (Rust regex `\s*$` on text[0, pos)).
size_t whitespace_run_start(std::string_view text, size_t pos) {
  while (pos > 0) {
    size_t b = pos - 1;
    while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
    size_t len = 0;
    if (!utf8::is_whitespace(utf8::decode(text, b, len))) break;
    pos = b;
  }
  return pos;
}

// End of the whitespace run that starts at `pos` (Rust regex `^\s*` on text[pos, end)).
size_t whitespace_run_end(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    size_t len = 0;
    if (!utf8::is_whitespace(utf8::decode(text, pos, len))) break;
    pos += len;
  }
  return pos;
}

}  // namespace

void AddedVocabulary::add(AddedToken token) {
  if (token.match_form.empty()) token.match_form = token.content;
  auto it = by_id_.find(token.id);
  if (it != by_id_.end()) {
    by_content_.erase(tokens_[it->second].content);
    by_content_[token.content] = it->second;
    tokens_[it->second] = std::move(token);
    return;
  }
  by_id_[token.id] = tokens_.size();
  by_content_[token.content] = tokens_.size();
  tokens_.push_back(std::move(token));
}

void AddedVocabulary::finalize() {
  raw_ = Matcher{};
  normalized_ = Matcher{};
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (t.match_form.empty()) continue;
    Matcher& m = t.normalized ? normalized_ : raw_;
    m.by_first_byte[static_cast<unsigned char>(t.match_form[0])].push_back(i);
    m.any = true;
  }
  for (Matcher* m : {&raw_, &normalized_}) {
    for (auto& list : m->by_first_byte) {
      std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
        return tokens_[a].match_form.size() > tokens_[b].match_form.size();
      });
    }
  }
}

void AddedVocabulary::match_at(const Matcher& m, std::string_view text, size_t pos, size_t& token,
                               size_t& len) const {
  len = 0;
  for (size_t i : m.by_first_byte[static_cast<unsigned char>(text[pos])]) {
    const std::string& form = tokens_[i].match_form;
    if (text.compare(pos, form.size(), form) == 0) {
      token = i;
      len = form.size();
      return;  // longest first
    }
  }
}

std::vector<AddedVocabulary::Segment> AddedVocabulary::split(std::string_view text,
                                                             bool normalized_set) const {
  std::vector<Segment> segments;
  if (text.empty()) return segments;
  const Matcher& m = normalized_set ? normalized_ : raw_;
  if (!m.any) {
    segments.push_back({0, text.size(), -1});
    return segments;
  }
  size_t start_offset = 0;  // end of the last emitted segment
  size_t pos = 0;           // where the search for the next match resumes
  while (pos < text.size()) {
    size_t token = 0, len = 0;
    match_at(m, text, pos, token, len);
    if (len == 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens_[token];
    size_t start = pos, stop = pos + len;
    pos = stop;  // the search goes on after the match, kept or not
    if (t.single_word) {
      const bool start_space = start == 0 || !utf8::is_word(last_char(text, start));
      size_t n = 0;
      const bool stop_space = stop == text.size() || !utf8::is_word(utf8::decode(text, stop, n));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(whitespace_run_start(text, start), start_offset);
    if (t.rstrip) stop = whitespace_run_end(text, stop);
    start = std::max(start, start_offset);
    if (stop <= start) continue;  // wholly inside the previous token's stripped spaces
    if (start_offset < start) segments.push_back({start_offset, start, -1});
    segments.push_back({start, stop, t.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) segments.push_back({start_offset, text.size(), -1});
  return segments;
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

int32_t AddedVocabulary::max_id() const {
  int32_t best = -1;
  for (const AddedToken& t : tokens_) best = std::max(best, t.id);
  return best;
}

}  // namespace semskip
