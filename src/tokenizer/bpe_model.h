#pragma once
// The BPE model of a tokenizer.json: vocabulary, merges by rank, and the merge loop of HF
// `tokenizers` (lowest rank first, leftmost first among equal ranks), with a cache of the
// result per pre-tokenized piece.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace semskip {

class BpeModel {
 public:
  // From the "model" object; semskip::Error naming `where` for a missing vocab or merges, a
  // model type other than BPE, a merge naming a token not in the vocab, or a bad merge line.
  static BpeModel from_json(const nlohmann::json& model, const std::string& where);
  ~BpeModel();
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;

  // Appends the ids of one pre-tokenized piece (byte-level form). Thread-safe.
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr where no vocab entry has this id
  size_t n_entries() const { return vocab_.size(); }  // HF get_vocab_size()
  int32_t max_id() const { return static_cast<int32_t>(tokens_.size()) - 1; }

 private:
  BpeModel();
  std::vector<int32_t> merge_word(std::string_view piece) const;
  int32_t symbol_id(std::string_view ch, bool first, bool last) const;

  struct Merge {
    uint32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_;  // by id; "" where tokens_present_ is 0
  std::vector<char> tokens_present_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id, right id) -> rank, merged id
  std::array<int32_t, 512> byte_char_ids_;      // code point < 512 -> id (-1 none), no affixes
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;

  struct Cache;
  std::unique_ptr<Cache> cache_;
};

}  // namespace semskip
