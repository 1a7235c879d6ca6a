#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/byte_level.h"

namespace semskip {

namespace {

PreTokenizer::Behavior parse_behavior(const std::string& s, const std::string& where) {
  using B = PreTokenizer::Behavior;
  if (s == "Removed") return B::kRemoved;
  if (s == "Isolated") return B::kIsolated;
  if (s == "MergedWithPrevious") return B::kMergedWithPrevious;
  if (s == "MergedWithNext") return B::kMergedWithNext;
  if (s == "Contiguous") return B::kContiguous;
  SEMSKIP_THROW_MSG("{}: unknown Split behavior '{}'", where, s);
}

// A literal Split pattern as a regex: every ASCII punctuation character escaped.
std::string escape_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u) && c != ' ') out += '\\';
    out += c;
  }
  return out;
}

bool get_bool(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  SEMSKIP_THROW_IF_NOT_MSG(j[key].is_boolean(), "{}: pre_tokenizer field \"{}\" must be a boolean",
                           where, key);
  return j[key].get<bool>();
}

struct Range {
  size_t begin, end;
  bool flag;  // is_match before the behaviour is applied, `remove` after
};

}  // namespace

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j, const std::string& where) {
  PreTokenizer p;
  add_steps(j, where, p.steps_);
  return p;
}

void PreTokenizer::add_steps(const nlohmann::json& j, const std::string& where, std::vector<Step>& steps) {
  if (j.is_null()) return;
  SEMSKIP_THROW_IF_NOT_MSG(j.is_object() && j.contains("type") && j["type"].is_string(),
                           "{}: pre_tokenizer must be null or an object with a \"type\"", where);
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    SEMSKIP_THROW_IF_NOT_MSG(j.contains("pretokenizers") && j["pretokenizers"].is_array(),
                             "{}: pre_tokenizer Sequence without a \"pretokenizers\" list", where);
    for (const auto& sub : j["pretokenizers"]) add_steps(sub, where, steps);
  } else if (type == "Split") {
    Step s{Step::Kind::kSplit, nullptr};
    const auto& pat = j.value("pattern", nlohmann::json());
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) {
      s.regex = std::make_shared<Regex>(pat["Regex"].get<std::string>(), where);
    } else if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) {
      s.regex = std::make_shared<Regex>(escape_literal(pat["String"].get<std::string>()), where);
    } else {
      SEMSKIP_THROW_MSG("{}: Split pre_tokenizer needs \"pattern\": {{\"Regex\": ...}} or {{\"String\": ...}}",
                        where);
    }
    SEMSKIP_THROW_IF_NOT_MSG(j.contains("behavior") && j["behavior"].is_string(),
                             "{}: Split pre_tokenizer without a \"behavior\"", where);
    s.behavior = parse_behavior(j["behavior"].get<std::string>(), where);
    s.invert = get_bool(j, "invert", false, where);
    steps.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    Step s{Step::Kind::kByteLevel, nullptr};
    s.add_prefix_space = get_bool(j, "add_prefix_space", true, where);
    if (get_bool(j, "use_regex", true, where)) {
      static const auto gpt2 = std::make_shared<const Regex>(byte_level::kGpt2Pattern, "GPT-2 regex");
      s.regex = gpt2;
    }
    steps.push_back(std::move(s));
  } else {
    SEMSKIP_THROW_MSG("{}: unsupported pre_tokenizer type '{}' (supported: Sequence, Split, ByteLevel)",
                      where, type);
  }
}

void PreTokenizer::apply_split(const Regex& regex, Behavior behavior, bool invert,
                               std::string_view piece, std::vector<std::string>& out) {
  // The whole piece as contiguous ranges, each a match or not (HF Pattern::find_matches).
  std::vector<Range> ranges;
  size_t prev = 0;
  for (const auto& [b, e] : regex.find_all(piece)) {
    if (prev != b) ranges.push_back({prev, b, invert});
    ranges.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != piece.size()) ranges.push_back({prev, piece.size(), invert});

  // HF NormalizedString::split: decide per behaviour which ranges merge and which go.
  std::vector<Range> splits;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
      for (Range r : ranges) splits.push_back({r.begin, r.end, false});
      break;
    case Behavior::kRemoved:
      splits = ranges;
      break;
    case Behavior::kContiguous:
      for (Range r : ranges) {
        if (r.flag == previous_match && !splits.empty()) {
          splits.back().end = r.end;
        } else {
          splits.push_back({r.begin, r.end, false});
        }
        previous_match = r.flag;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (Range r : ranges) {
        if (r.flag && !previous_match && !splits.empty()) {
          splits.back().end = r.end;
        } else {
          splits.push_back({r.begin, r.end, false});
        }
        previous_match = r.flag;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
        if (it->flag && !previous_match && !splits.empty()) {
          splits.back().begin = it->begin;
        } else {
          splits.push_back({it->begin, it->end, false});
        }
        previous_match = it->flag;
      }
      std::reverse(splits.begin(), splits.end());
      break;
  }
  for (const Range& r : splits) {
    if (!r.flag && r.end > r.begin) out.emplace_back(piece.substr(r.begin, r.end - r.begin));
  }
}

void PreTokenizer::apply_step(const Step& step, std::string_view piece, std::vector<std::string>& out) {
  if (step.kind == Step::Kind::kSplit) {
    apply_split(*step.regex, step.behavior, step.invert, piece, out);
    return;
  }
  std::string prefixed;
  if (step.add_prefix_space && piece[0] != ' ') {
    prefixed.reserve(piece.size() + 1);
    prefixed += ' ';
    prefixed += piece;
    piece = prefixed;
  }
  const size_t first = out.size();
  if (step.regex) {
    apply_split(*step.regex, Behavior::kIsolated, false, piece, out);
  } else {
    out.emplace_back(piece);
  }
  std::string mapped;
  for (size_t k = first; k < out.size(); ++k) {
    mapped.clear();
    byte_level::encode(out[k], mapped);
    out[k].swap(mapped);
  }
}

void PreTokenizer::split(std::string_view segment, std::vector<std::string>& out) const {
  if (segment.empty()) return;
  if (steps_.empty()) {
    out.emplace_back(segment);
    return;
  }
  // The first step reads the segment in place; later ones read the pieces of the step before.
  std::vector<std::string> pieces, next;
  apply_step(steps_[0], segment, steps_.size() == 1 ? out : pieces);
  for (size_t i = 1; i < steps_.size(); ++i) {
    std::vector<std::string>& dst = i + 1 == steps_.size() ? out : next;
    for (const std::string& piece : pieces) apply_step(steps_[i], piece, dst);
    if (&dst == &next) {
      pieces.swap(next);
      next.clear();
    }
  }
}

}  // namespace semskip
