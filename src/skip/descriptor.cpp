#include "skip/descriptor.h"

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

Descriptor Descriptor::parse(const std::string& text) {
  Descriptor d;
  d.text_ = trim(text);
  SEMSKIP_THROW_IF_NOT_MSG(!d.text_.empty(), "empty policy descriptor");
  size_t colon = d.text_.find(':');
  d.name_ = trim(d.text_.substr(0, colon));
  SEMSKIP_THROW_IF_NOT_MSG(!d.name_.empty(), "policy descriptor '{}': missing policy name", d.text_);
  if (colon == std::string::npos) return d;
  std::string rest = d.text_.substr(colon + 1);
  SEMSKIP_THROW_IF_NOT_MSG(!trim(rest).empty(), "policy descriptor '{}': nothing after ':'", d.text_);
  for (const std::string& field : split(rest, ',')) {
    size_t eq = field.find('=');
    SEMSKIP_THROW_IF_NOT_MSG(eq != std::string::npos,
                             "policy descriptor '{}': '{}' is not key=value", d.text_, field);
    std::string key = trim(field.substr(0, eq));
    std::string value = trim(field.substr(eq + 1));
    SEMSKIP_THROW_IF_NOT_MSG(!key.empty() && !value.empty(),
                             "policy descriptor '{}': '{}' has an empty key or value", d.text_, field);
    SEMSKIP_THROW_IF_NOT_MSG(!d.has(key), "policy descriptor '{}': '{}' is given twice", d.text_, key);
    d.params_.emplace_back(key, value);
  }
  return d;
}

const std::string* Descriptor::find(const std::string& key) const {
  for (const auto& kv : params_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

bool Descriptor::has(const std::string& key) const { return find(key) != nullptr; }

std::string Descriptor::get_string(const std::string& key, const std::string& def) const {
  const std::string* v = find(key);
  return v ? *v : def;
}

std::string Descriptor::get_choice(const std::string& key, const std::string& def,
                                   const std::vector<std::string>& allowed) const {
  std::string v = get_string(key, def);
  for (const std::string& a : allowed)
    if (a == v) return v;
  SEMSKIP_THROW_MSG("policy descriptor '{}': {}={} is not one of {}", text_, key, v, join(allowed, "|"));
}

int64_t Descriptor::get_int(const std::string& key, int64_t def) const {
  const std::string* v = find(key);
  return v ? parse_int(*v, fmt::format("policy descriptor '{}', key '{}'", text_, key)) : def;
}

double Descriptor::get_double(const std::string& key, double def) const {
  const std::string* v = find(key);
  return v ? parse_double(*v, fmt::format("policy descriptor '{}', key '{}'", text_, key)) : def;
}

std::vector<int64_t> Descriptor::get_int_list(const std::string& key) const {
  std::vector<int64_t> out;
  const std::string* v = find(key);
  if (!v) return out;
  for (const std::string& item : split(*v, '+'))
    out.push_back(parse_int(item, fmt::format("policy descriptor '{}', key '{}'", text_, key)));
  return out;
}

int64_t Descriptor::require_int(const std::string& key) const {
  SEMSKIP_THROW_IF_NOT_MSG(has(key), "policy descriptor '{}': '{}' is required", text_, key);
  return get_int(key, 0);
}

double Descriptor::require_double(const std::string& key) const {
  SEMSKIP_THROW_IF_NOT_MSG(has(key), "policy descriptor '{}': '{}' is required", text_, key);
  return get_double(key, 0.0);
}

void Descriptor::check_keys(const std::set<std::string>& known) const {
  for (const auto& kv : params_) {
    if (known.count(kv.first)) continue;
    std::vector<std::string> names(known.begin(), known.end());
    SEMSKIP_THROW_MSG("policy descriptor '{}': unknown key '{}' (accepted: {})", text_, kv.first,
                      names.empty() ? std::string("none") : join(names, ", "));
  }
}

}  // namespace semskip
