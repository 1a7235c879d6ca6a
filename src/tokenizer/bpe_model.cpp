#include "tokenizer/bpe_model.h"

#include <limits>
#include <mutex>
#include <queue>
#include <shared_mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace semskip {

namespace {

// HF caches pieces shorter than this; longer ones are rare and cheap to redo.
constexpr size_t kCacheMaxPieceBytes = 256;
constexpr size_t kCacheCapacity = 1 << 16;

std::string optional_string(const nlohmann::json& m, const char* key, const std::string& where) {
  if (!m.contains(key) || m[key].is_null()) return {};
  SEMSKIP_THROW_IF_NOT_MSG(m[key].is_string(), "{}: model field \"{}\" must be a string or null", where, key);
  return m[key].get<std::string>();
}

bool optional_bool(const nlohmann::json& m, const char* key, const std::string& where) {
  if (!m.contains(key) || m[key].is_null()) return false;
  SEMSKIP_THROW_IF_NOT_MSG(m[key].is_boolean(), "{}: model field \"{}\" must be a boolean", where, key);
  return m[key].get<bool>();
}

// One merge as (left, right): ["a", "b"] or the older "a b".
std::pair<std::string, std::string> parse_merge(const nlohmann::json& m, size_t rank, const std::string& where) {
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  }
  if (m.is_string()) {
    const std::string line = m.get<std::string>();
    const size_t sp = line.find(' ');
    SEMSKIP_THROW_IF_NOT_MSG(sp != std::string::npos && line.find(' ', sp + 1) == std::string::npos,
                             "{}: merge {} \"{}\" is not two tokens separated by one space", where,
                             rank + 1, line);
    return {line.substr(0, sp), line.substr(sp + 1)};
  }
  SEMSKIP_THROW_MSG("{}: merge {} is neither [\"a\", \"b\"] nor \"a b\": {}", where, rank + 1,
                    m.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  bool live;
};

struct QueuedMerge {
  uint32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t new_id;
  // Lowest rank first, then leftmost: the order of HF's merge heap.
  bool operator>(const QueuedMerge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

struct BpeModel::Cache {
  std::shared_mutex mu;
  std::unordered_map<std::string, std::vector<int32_t>> ids;  // piece -> its ids
};

BpeModel::BpeModel() : cache_(std::make_unique<Cache>()) { byte_char_ids_.fill(-1); }
BpeModel::~BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;

BpeModel BpeModel::from_json(const nlohmann::json& m, const std::string& where) {
  SEMSKIP_THROW_IF_NOT_MSG(m.is_object(), "{}: \"model\" is missing or not an object", where);
  if (m.contains("type")) {
    SEMSKIP_THROW_IF_NOT_MSG(m["type"].is_string(), "{}: model \"type\" must be a string", where);
    const std::string type = m["type"].get<std::string>();
    SEMSKIP_THROW_IF_NOT_MSG(type == "BPE",
                             "{}: unsupported model type '{}': semskip reads BPE tokenizers only", where, type);
  }
  SEMSKIP_THROW_IF_NOT_MSG(m.contains("vocab") && m["vocab"].is_object(),
                           "{}: model has no \"vocab\" object", where);
  SEMSKIP_THROW_IF_NOT_MSG(m.contains("merges") && m["merges"].is_array(),
                           "{}: model has no \"merges\" list", where);
  if (m.contains("dropout") && !m["dropout"].is_null()) {
    SEMSKIP_THROW_IF_NOT_MSG(m["dropout"].is_number() && m["dropout"].get<double>() == 0.0,
                             "{}: BPE dropout {} is not supported (it makes encoding random)", where,
                             m["dropout"].dump());
  }

  BpeModel b;
  b.fuse_unk_ = optional_bool(m, "fuse_unk", where);
  b.byte_fallback_ = optional_bool(m, "byte_fallback", where);
  b.ignore_merges_ = optional_bool(m, "ignore_merges", where);
  b.continuing_subword_prefix_ = optional_string(m, "continuing_subword_prefix", where);
  b.end_of_word_suffix_ = optional_string(m, "end_of_word_suffix", where);

  for (const auto& [token, value] : m["vocab"].items()) {
    SEMSKIP_THROW_IF_NOT_MSG(value.is_number_integer() && value.get<int64_t>() >= 0 &&
                                 value.get<int64_t>() < std::numeric_limits<int32_t>::max(),
                             "{}: vocab entry '{}' has id {}, not an integer in [0, 2^31 - 1)", where,
                             token, value.dump());
    const auto id = static_cast<int32_t>(value.get<int64_t>());
    if (static_cast<size_t>(id) >= b.tokens_.size()) {
      b.tokens_.resize(id + 1);
      b.tokens_present_.resize(id + 1, 0);
    }
    SEMSKIP_THROW_IF_NOT_MSG(!b.tokens_present_[id], "{}: vocab gives id {} to both '{}' and '{}'", where,
                             id, b.tokens_[id], token);
    b.tokens_[id] = token;
    b.tokens_present_[id] = 1;
    b.vocab_.emplace(token, id);
    size_t len = 0;
    if (!token.empty()) {
      const char32_t cp = utf8::decode(token, 0, len);
      if (len == token.size() && cp < b.byte_char_ids_.size()) b.byte_char_ids_[cp] = id;
    }
  }

  const std::string unk = optional_string(m, "unk_token", where);
  if (!unk.empty()) {
    auto it = b.vocab_.find(unk);
    SEMSKIP_THROW_IF_NOT_MSG(it != b.vocab_.end(), "{}: unk_token '{}' is not in the vocab", where, unk);
    b.unk_id_ = it->second;
  }

  const auto& merges = m["merges"];
  const size_t prefix_len = b.continuing_subword_prefix_.size();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    // The legacy merges.txt header, which HF skips when merges are strings.
    if (merges[rank].is_string() && merges[rank].get<std::string>().rfind("#version", 0) == 0) continue;
    // Named pair members rather than a structured binding: C++17 lambdas cannot capture those.
    const auto pair = parse_merge(merges[rank], rank, where);
    const std::string& left = pair.first;
    const std::string& right = pair.second;
    auto find = [&](const std::string& t) {
      auto it = b.vocab_.find(t);
      SEMSKIP_THROW_IF_NOT_MSG(it != b.vocab_.end(), "{}: merge {} ('{}' '{}') names '{}', which is not in the vocab",
                               where, rank + 1, left, right, t);
      return it->second;
    };
    const int32_t a = find(left), r = find(right);
    const std::string joined = left + right.substr(std::min(prefix_len, right.size()));
    const int32_t merged = find(joined);
    // Like HF's map built from the list, a repeated pair keeps its last rank.
    b.merges_[pair_key(a, r)] = Merge{static_cast<uint32_t>(rank), merged};
  }
  return b;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !tokens_present_[id]) return nullptr;
  return &tokens_[id];
}

int32_t BpeModel::symbol_id(std::string_view ch, bool first, bool last) const {
  const bool affixed = (!first && !continuing_subword_prefix_.empty()) || (last && !end_of_word_suffix_.empty());
  if (!affixed) {
    size_t len = 0;
    const char32_t cp = utf8::decode(ch, 0, len);
    if (cp < byte_char_ids_.size()) return byte_char_ids_[cp];
    auto it = vocab_.find(std::string(ch));
    return it == vocab_.end() ? -1 : it->second;
  }
  std::string s = first ? std::string(ch) : continuing_subword_prefix_ + std::string(ch);
  if (last) s += end_of_word_suffix_;
  auto it = vocab_.find(s);
  return it == vocab_.end() ? -1 : it->second;
}

std::vector<int32_t> BpeModel::merge_word(std::string_view piece) const {
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  auto push = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, -1, true});
    if (n > 0) symbols[n - 1].next = n;
  };
  // An unknown character becomes unk (runs fused if fuse_unk), or its <0xXX> byte tokens with
  // byte_fallback, or nothing at all when the model has no unk token (HF's behaviour).
  bool unk_pending = false;
  for (size_t pos = 0; pos < piece.size();) {
    const size_t len = utf8::sequence_length(static_cast<unsigned char>(piece[pos]));
    const std::string_view ch = piece.substr(pos, len);
    const bool first = pos == 0;
    pos += len;
    const int32_t id = symbol_id(ch, first, pos >= piece.size());
    if (id >= 0) {
      if (unk_pending) push(*unk_id_);
      unk_pending = false;
      push(id);
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      for (unsigned char c : ch) {
        auto it = vocab_.find(fmt::format("<0x{:02X}>", c));
        if (it == vocab_.end()) break;
        bytes.push_back(it->second);
      }
      if (bytes.size() == ch.size()) {
        for (int32_t b : bytes) push(b);
        continue;
      }
    }
    if (unk_id_) {
      if (unk_pending && !fuse_unk_) push(*unk_id_);
      unk_pending = true;
    }
  }
  if (unk_pending) push(*unk_id_);

  std::priority_queue<QueuedMerge, std::vector<QueuedMerge>, std::greater<QueuedMerge>> queue;
  auto enqueue = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    auto it = merges_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) enqueue(i);
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.live || left.next < 0) continue;
    // Entries outlive the pairs they were made for: use one only if its pair is still there.
    auto it = merges_.find(pair_key(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    Symbol& right = symbols[left.next];
    left.id = top.new_id;
    right.live = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) enqueue(left.prev);
    enqueue(top.pos);
  }
  std::vector<int32_t> ids;
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
  return ids;
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(std::string(piece));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() < kCacheMaxPieceBytes;
  std::string key;
  if (cacheable) {
    key.assign(piece);
    std::shared_lock lock(cache_->mu);
    auto it = cache_->ids.find(key);
    if (it != cache_->ids.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_word(piece);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::unique_lock lock(cache_->mu);
    if (cache_->ids.size() < kCacheCapacity) cache_->ids.emplace(std::move(key), std::move(ids));
  }
}

}  // namespace semskip
