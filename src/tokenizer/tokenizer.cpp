#include "tokenizer/tokenizer.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"

namespace semskip {

using nlohmann::json;

struct Tokenizer::Impl {
  std::string path;
  BpeModel model;
  AddedVocabulary added;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  bool byte_level_decoder = false;  // else HF's default: tokens joined by spaces
  int32_t vocab_size = 0;

  // The string an id decodes from: the added token (in its normalized form, as HF decodes
  // it), else the vocab entry; nullptr when neither has the id.
  const std::string* token_of(int32_t id) const {
    if (const AddedToken* t = added.by_id(id)) return &t->match_form;
    return model.id_to_token(id);
  }
};

namespace {

bool flag(const json& t, const char* key, bool fallback, const std::string& where) {
  if (!t.contains(key) || t[key].is_null()) return fallback;
  SEMSKIP_THROW_IF_NOT_MSG(t[key].is_boolean(), "{}: added token field \"{}\" must be a boolean", where, key);
  return t[key].get<bool>();
}

// HF TokenizerImpl::add_tokens: an added token takes the id its content already has (added
// earlier or in the vocab), else the next id after the vocab; the file's "id" is advisory.
void load_added_tokens(const json& list, const std::string& where, const BpeModel& model,
                       const Normalizer& normalizer, AddedVocabulary& added) {
  if (list.is_null()) return;
  SEMSKIP_THROW_IF_NOT_MSG(list.is_array(), "{}: \"added_tokens\" must be a list", where);
  auto next_id = static_cast<int32_t>(model.n_entries());
  for (const json& t : list) {
    SEMSKIP_THROW_IF_NOT_MSG(t.is_object() && t.contains("content") && t["content"].is_string(),
                             "{}: added token without a \"content\" string: {}", where,
                             t.dump(-1, ' ', false, json::error_handler_t::replace));
    AddedToken tok;
    tok.content = t["content"].get<std::string>();
    if (tok.content.empty()) continue;
    tok.special = flag(t, "special", false, where);
    tok.single_word = flag(t, "single_word", false, where);
    tok.lstrip = flag(t, "lstrip", false, where);
    tok.rstrip = flag(t, "rstrip", false, where);
    tok.normalized = flag(t, "normalized", !tok.special, where);
    tok.match_form = tok.normalized ? normalizer.apply(tok.content) : tok.content;
    if (const AddedToken* old = added.by_content(tok.content)) {
      tok.id = old->id;
    } else if (auto id = model.token_to_id(tok.content)) {
      tok.id = *id;
    } else {
      tok.id = next_id++;
    }
    added.add(std::move(tok));
  }
  added.finalize();
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  const std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    // parse_error, or out_of_range for a number too large for any type.
    SEMSKIP_THROW_MSG("tokenizer file {}: not valid JSON: {}", path, e.what());
  }
  const std::string where = "tokenizer file " + path;
  SEMSKIP_THROW_IF_NOT_MSG(j.is_object(), "{}: the top level is not a JSON object", where);
  if (j.contains("version") && j["version"].is_string()) {
    const std::string v = j["version"].get<std::string>();
    SEMSKIP_THROW_IF_NOT_MSG(v == "1.0", "{}: unknown tokenizer.json version '{}' (expected 1.0)", where, v);
  }
  SEMSKIP_THROW_IF_NOT_MSG(j.contains("model"), "{}: no \"model\"", where);
  const json null;
  auto field = [&](const char* key) -> const json& { return j.contains(key) ? j[key] : null; };

  auto impl = std::make_unique<Impl>(Impl{path, BpeModel::from_json(j["model"], where), {},
                                          Normalizer::from_json(field("normalizer"), where),
                                          PreTokenizer::from_json(field("pre_tokenizer"), where)});
  const json& dec = field("decoder");
  if (!dec.is_null()) {
    const std::string type = dec.is_object() && dec.contains("type") && dec["type"].is_string()
                                 ? dec["type"].get<std::string>() : std::string("?");
    SEMSKIP_THROW_IF_NOT_MSG(type == "ByteLevel", "{}: unsupported decoder type '{}' (supported: ByteLevel, null)",
                             where, type);
    impl->byte_level_decoder = true;
  }
  load_added_tokens(field("added_tokens"), where, impl->model, impl->normalizer, impl->added);
  impl->vocab_size = std::max(impl->model.max_id(), impl->added.max_id()) + 1;
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const size_t bad = utf8::find_invalid(text);
  SEMSKIP_THROW_IF_NOT_MSG(bad == text.size(), "text to encode is not valid UTF-8 (at byte {})", bad);
  const Impl& t = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::vector<std::string> pieces;
  // Added tokens that match the raw text first, then those that match the normalized text, as
  // HF AddedVocabulary::extract_and_normalize does; what is left is pre-tokenized.
  for (const auto& raw : t.added.split(text, false)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    std::string storage;
    const std::string_view normalized = t.normalizer.apply(text.substr(raw.begin, raw.end - raw.begin), storage);
    for (const auto& seg : t.added.split(normalized, true)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      pieces.clear();
      t.pre_tokenizer.split(normalized.substr(seg.begin, seg.end - seg.begin), pieces);
      for (const std::string& piece : pieces) t.model.tokenize(piece, ids);
    }
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    const std::string& token = id_to_token(id);
    if (skip_special) {
      const AddedToken* a = t.added.by_content(token);
      if (a && a->special) continue;
    }
    if (t.byte_level_decoder) {
      byte_level::decode_token(token, bytes);
    } else {
      if (!first) bytes += ' ';
      bytes += token;
    }
    first = false;
  }
  return t.byte_level_decoder ? utf8::lossy(bytes) : bytes;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* a = impl_->added.by_content(token)) return a->id;
  return impl_->model.token_to_id(token);
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  SEMSKIP_THROW_IF_NOT_MSG(id >= 0 && id < impl_->vocab_size, "token id {} is out of range [0, {}) of {}",
                           id, impl_->vocab_size, impl_->path);
  const std::string* token = impl_->token_of(id);
  SEMSKIP_THROW_IF_NOT_MSG(token, "token id {} has no token in {}", id, impl_->path);
  return *token;
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* a = impl_->added.by_id(id);
  return a && a->special;
}

}  // namespace semskip
