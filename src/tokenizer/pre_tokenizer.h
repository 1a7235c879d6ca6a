#pragma once
// The pre-tokenizer of a tokenizer.json: a Sequence of Split (regex or literal, any HF
// delimiter behaviour, optional invert) and ByteLevel (add_prefix_space, use_regex) steps,
// applied as HF `tokenizers` applies them. ByteLevel also maps each piece to its byte-level
// form, so its output is what the BPE model reads.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/regex.h"

namespace semskip {

class PreTokenizer {
 public:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

  // From the "pre_tokenizer" value (null allowed: the text stays one piece); semskip::Error
  // naming `where` for unknown types, behaviours or bad regexes.
  static PreTokenizer from_json(const nlohmann::json& j, const std::string& where);

  // Splits one normalized text segment into pieces (never empty) and appends them to out.
  void split(std::string_view segment, std::vector<std::string>& out) const;

 private:
  struct Step {
    enum class Kind { kSplit, kByteLevel } kind;
    std::shared_ptr<const Regex> regex;  // Split's pattern, or ByteLevel's GPT-2 regex if use_regex
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel only
  };
  static void add_steps(const nlohmann::json& j, const std::string& where, std::vector<Step>& steps);
  static void apply_step(const Step& step, std::string_view piece, std::vector<std::string>& out);
  static void apply_split(const Regex& regex, Behavior behavior, bool invert, std::string_view piece,
                          std::vector<std::string>& out);

  std::vector<Step> steps_;
};

}  // namespace semskip
