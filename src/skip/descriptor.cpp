#include "skip/descriptor.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

namespace {

// The documented key order of each policy (README, `semskip run`); the cache keys of
// skip/cache_policy_options.h follow a cache policy's own keys.
const std::vector<std::string>& documented_keys(const std::string& name) {
  static const std::vector<std::string> kNone;
  static const std::vector<std::string> kStatic = {"layers", "k"};
  static const std::vector<std::string> kRandom = {"rate", "layers", "seed", "kv"};
  static const std::vector<std::string> kOracle = {"eps", "layers", "kv"};
  static const std::vector<std::string> kResidual = {"p",    "r",    "tau", "target", "kv",    "k",     "corr",
                                                     "ridge", "proj", "kdim", "cap",   "evict", "admit", "vdtype"};
  static const std::vector<std::string> kPlan = {"p", "beta", "tau", "decide", "proj", "kdim", "cap", "evict", "admit", "vdtype"};
  if (name == "static") return kStatic;
  if (name == "random") return kRandom;
  if (name == "oracle") return kOracle;
  if (name == "residual" || name == "cascade") return kResidual;
  if (name == "plan") return kPlan;
  return kNone;
}

bool is_int_text(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// One notation for numbers: integers in decimal, other numbers in shortest round-trip form;
// anything else unchanged. Applied to each '+'-joined item and to the number of `sample:<p>`.
std::string canonical_value(const std::string& v) {
  if (v.find('+') != std::string::npos && v.size() > 1 && v.front() != '+') {
    std::vector<std::string> items;
    for (const std::string& item : split(v, '+')) items.push_back(canonical_value(item));
    return join(items, "+");
  }
  const size_t colon = v.find(':');
  if (colon != std::string::npos) return v.substr(0, colon + 1) + canonical_value(v.substr(colon + 1));
  if (is_int_text(v)) {
    try {
      return std::to_string(parse_int(v, "value"));
    } catch (const std::exception&) {
      return v;
    }
  }
  const char c = v.empty() ? '\0' : v[0];
  const bool numeric_start = (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+';
  if (!numeric_start) return v;
  try {
    const double d = parse_double(v, "value");
    if (!std::isfinite(d)) return v;
    // -0 prints as "-0", which reads back as the integer 0: one zero keeps the form canonical.
    return fmt::format("{}", d == 0 ? 0.0 : d);
  } catch (const std::exception&) {
    return v;
  }
}

}  // namespace

Descriptor Descriptor::parse(const std::string& text) {
  Descriptor d;
  d.text_ = trim(text);
  d.source_ = d.text_;
  SEMSKIP_THROW_IF_NOT_MSG(!d.text_.empty(), "empty policy descriptor");
  size_t colon = d.text_.find(':');
  d.name_ = trim(d.text_.substr(0, colon));
  SEMSKIP_THROW_IF_NOT_MSG(!d.name_.empty(), "policy descriptor '{}': missing policy name", d.text_);
  if (colon == std::string::npos) {
    d.text_ = d.name_;
    return d;
  }
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
    d.params_.emplace_back(key, canonical_value(value));
  }
  const std::vector<std::string>& order = documented_keys(d.name_);
  auto rank = [&](const std::string& key) {
    const auto it = std::find(order.begin(), order.end(), key);
    return static_cast<size_t>(it - order.begin());  // undocumented keys: order.size()
  };
  std::stable_sort(d.params_.begin(), d.params_.end(), [&](const auto& a, const auto& b) {
    const size_t ra = rank(a.first), rb = rank(b.first);
    return ra != rb ? ra < rb : (ra == order.size() && a.first < b.first);
  });
  std::vector<std::string> fields;
  for (const auto& kv : d.params_) fields.push_back(kv.first + "=" + kv.second);
  d.text_ = d.name_ + ":" + join(fields, ",");
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
