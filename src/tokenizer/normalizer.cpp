#include "tokenizer/normalizer.h"

#include <cstdlib>
#include <memory>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "core/error.h"

namespace semskip {

namespace {

void add_forms(const nlohmann::json& j, const std::string& where, std::vector<Normalizer::Form>& forms) {
  if (j.is_null()) return;
  SEMSKIP_THROW_IF_NOT_MSG(j.is_object() && j.contains("type") && j["type"].is_string(),
                           "{}: normalizer must be null or an object with a \"type\"", where);
  const std::string type = j["type"].get<std::string>();
  if (type == "NFC") {
    forms.push_back(Normalizer::Form::kNfc);
  } else if (type == "NFD") {
    forms.push_back(Normalizer::Form::kNfd);
  } else if (type == "NFKC") {
    forms.push_back(Normalizer::Form::kNfkc);
  } else if (type == "NFKD") {
    forms.push_back(Normalizer::Form::kNfkd);
  } else if (type == "Sequence") {
    SEMSKIP_THROW_IF_NOT_MSG(j.contains("normalizers") && j["normalizers"].is_array(),
                             "{}: normalizer Sequence without a \"normalizers\" list", where);
    for (const auto& sub : j["normalizers"]) add_forms(sub, where, forms);
  } else {
    SEMSKIP_THROW_MSG("{}: unsupported normalizer type '{}' (supported: NFC, NFD, NFKC, NFKD, Sequence)",
                      where, type);
  }
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& j, const std::string& where) {
  Normalizer n;
  add_forms(j, where, n.forms_);
  return n;
}

std::string Normalizer::apply(std::string_view text) const {
  std::string storage;
  const std::string_view out = apply(text, storage);
  return out.data() == storage.data() ? storage : std::string(out);
}

std::string_view Normalizer::apply(std::string_view text, std::string& storage) const {
  // ASCII is unchanged by every normal form: the common case skips utf8proc.
  if (forms_.empty() || is_ascii(text)) return text;
  std::string& cur = storage;
  cur.assign(text);
  for (Form f : forms_) {
    int options = UTF8PROC_STABLE;
    switch (f) {
      case Form::kNfc: options |= UTF8PROC_COMPOSE; break;
      case Form::kNfd: options |= UTF8PROC_DECOMPOSE; break;
      case Form::kNfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
      case Form::kNfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t* out = nullptr;
    // An explicit length (no UTF8PROC_NULLTERM) keeps embedded NUL characters.
    const utf8proc_ssize_t len =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(cur.data()),
                     static_cast<utf8proc_ssize_t>(cur.size()), &out,
                     static_cast<utf8proc_option_t>(options));
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
    SEMSKIP_THROW_IF_NOT_MSG(len >= 0, "Unicode normalisation failed: {}", utf8proc_errmsg(len));
    cur.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(len));
  }
  return cur;
}

}  // namespace semskip
