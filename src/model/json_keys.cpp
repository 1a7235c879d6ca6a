#include "model/json_keys.h"

#include <limits>

#include "core/error.h"

namespace semskip {

using nlohmann::json;

namespace {
// Enough of a wrong value to recognise it, never a whole embedded array.
std::string excerpt(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}
}  // namespace

JsonKeys::JsonKeys(const json& obj, std::string source, std::string prefix)
    : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {
  SEMSKIP_ASSERT(obj_.is_object());
}

bool JsonKeys::has(const std::string& key) const {
  auto it = obj_.find(key);
  return it != obj_.end() && !it->is_null();
}

const json& JsonKeys::at(const std::string& key) const {
  if (!has(key)) SEMSKIP_THROW_MSG("{}: missing required key '{}'", source_, name(key));
  return obj_.at(key);
}

JsonKeys JsonKeys::object(const std::string& key) const {
  if (!at(key).is_object()) wrong_type(key, "an object");
  return JsonKeys(obj_.at(key), source_, name(key) + ".");
}

void JsonKeys::fail(const std::string& key, const std::string& problem) const {
  SEMSKIP_THROW_MSG("{}: key '{}' {}", source_, name(key), problem);
}

void JsonKeys::wrong_type(const std::string& key, const char* expected) const {
  const json& v = obj_.at(key);
  SEMSKIP_THROW_MSG("{}: key '{}' must be {}, got {} {}", source_, name(key), expected, v.type_name(),
                    excerpt(v));
}

int64_t JsonKeys::as_int(const std::string& key, const json& v) const {
  // Strict: 64.0 is a float in JSON and a size written that way is a broken config.
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(key, "is too large for a 64-bit integer");
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  SEMSKIP_THROW_MSG("{}: key '{}' must be an integer, got {} {}", source_, name(key), v.type_name(),
                    excerpt(v));
}

int64_t JsonKeys::req_int(const std::string& key) const { return as_int(key, at(key)); }

int64_t JsonKeys::opt_int(const std::string& key, int64_t fallback) const {
  return has(key) ? req_int(key) : fallback;
}

double JsonKeys::req_number(const std::string& key) const {
  const json& v = at(key);
  if (!v.is_number()) wrong_type(key, "a number");
  return v.get<double>();
}

double JsonKeys::opt_number(const std::string& key, double fallback) const {
  return has(key) ? req_number(key) : fallback;
}

bool JsonKeys::opt_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  if (!obj_.at(key).is_boolean()) wrong_type(key, "true or false");
  return obj_.at(key).get<bool>();
}

std::string JsonKeys::req_string(const std::string& key) const {
  const json& v = at(key);
  if (!v.is_string()) wrong_type(key, "a string");
  return v.get<std::string>();
}

std::string JsonKeys::opt_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? req_string(key) : fallback;
}

std::vector<int64_t> JsonKeys::opt_int_or_int_list(const std::string& key) const {
  if (!has(key)) return {};
  const json& v = obj_.at(key);
  if (v.is_array()) return opt_int_list(key);
  if (!v.is_number_integer()) wrong_type(key, "an integer or a list of integers");
  return {as_int(key, v)};
}

std::vector<int64_t> JsonKeys::opt_int_list(const std::string& key) const {
  if (!has(key)) return {};
  const json& v = obj_.at(key);
  if (!v.is_array()) wrong_type(key, "a list of integers");
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer())
      SEMSKIP_THROW_MSG("{}: key '{}' must be a list of integers, but item {} is {} {}", source_, name(key),
                        i, v[i].type_name(), excerpt(v[i]));
    out.push_back(as_int(key, v[i]));
  }
  return out;
}

std::vector<std::string> JsonKeys::opt_string_list(const std::string& key) const {
  if (!has(key)) return {};
  const json& v = obj_.at(key);
  if (!v.is_array()) wrong_type(key, "a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string())
      SEMSKIP_THROW_MSG("{}: key '{}' must be a list of strings, but item {} is {} {}", source_, name(key), i,
                        v[i].type_name(), excerpt(v[i]));
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

int64_t JsonKeys::req_int_at_least(const std::string& key, int64_t min) const {
  int64_t v = req_int(key);
  if (v < min) {
    std::string bound = min == 1 ? "positive" : min == 0 ? "non-negative" : fmt::format("at least {}", min);
    fail(key, fmt::format("must be {}, got {}", bound, v));
  }
  return v;
}

int64_t JsonKeys::opt_int_at_least(const std::string& key, int64_t fallback, int64_t min) const {
  return has(key) ? req_int_at_least(key, min) : fallback;
}

}  // namespace semskip
