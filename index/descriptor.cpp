#include "index/descriptor.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

IndexDescriptor IndexDescriptor::parse(const std::string& text) {
  IndexDescriptor d;
  d.text_ = text;
  SEMSKIP_THROW_IF_NOT_MSG(!text.empty(), "index descriptor is empty (expected <backend>:<body>, "
                                          "for example 'faiss:Flat' or 'torch:flat')");
  const bool has_space = std::any_of(text.begin(), text.end(),
                                     [](unsigned char c) { return std::isspace(c) != 0; });
  SEMSKIP_THROW_IF_NOT_MSG(!has_space, "index descriptor '{}' contains whitespace", text);
  const size_t colon = text.find(':');
  SEMSKIP_THROW_IF_NOT_MSG(colon != std::string::npos && colon > 0,
                           "index descriptor '{}' has no backend (expected <backend>:<body>, "
                           "for example 'faiss:Flat' or 'torch:flat')",
                           text);
  d.backend_ = text.substr(0, colon);
  std::vector<std::string> fields = split(std::string_view(text).substr(colon + 1), '|');
  d.body_ = fields.front();
  SEMSKIP_THROW_IF_NOT_MSG(!d.body_.empty(), "index descriptor '{}' has an empty body after '{}:'",
                           text, d.backend_);
  for (size_t i = 1; i < fields.size(); ++i) {
    const std::string& f = fields[i];
    const size_t eq = f.find('=');
    SEMSKIP_THROW_IF_NOT_MSG(eq != std::string::npos && eq > 0 && eq + 1 < f.size(),
                             "index descriptor '{}': parameter '{}' is not <key>=<value>", text, f);
    std::string key = f.substr(0, eq);
    const bool repeated = std::any_of(d.params_.begin(), d.params_.end(),
                                      [&](const auto& p) { return p.first == key; });
    SEMSKIP_THROW_IF_NOT_MSG(!repeated, "index descriptor '{}': parameter '{}' is given twice",
                             text, key);
    d.params_.emplace_back(std::move(key), f.substr(eq + 1));
  }
  return d;
}

std::optional<std::string> IndexDescriptor::take(const std::string& key) {
  auto it = std::find_if(params_.begin(), params_.end(),
                         [&](const auto& p) { return p.first == key; });
  if (it == params_.end()) return std::nullopt;
  std::string value = it->second;
  params_.erase(it);
  return value;
}

int64_t IndexDescriptor::take_int(const std::string& key, int64_t fallback, int64_t min_value) {
  std::optional<std::string> v = take(key);
  if (!v) return fallback;
  const int64_t x = parse_int(*v, fmt::format("index descriptor '{}': parameter {}", text_, key));
  SEMSKIP_THROW_IF_NOT_MSG(x >= min_value, "index descriptor '{}': parameter {}={} must be ≥ {}",
                           text_, key, x, min_value);
  return x;
}

void IndexDescriptor::check_all_taken(const std::string& accepted) const {
  if (params_.empty()) return;
  SEMSKIP_THROW_MSG("index descriptor '{}': unknown parameter '{}' ({}:{} accepts: {})", text_,
                    params_.front().first, backend_, body_, accepted);
}

}  // namespace semskip
