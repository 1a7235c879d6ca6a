#pragma once
// Typed access to the keys of a JSON object read from a file, whose errors name the file and
// the key (with its path inside nested objects, e.g. "rope_scaling.factor"). A key holding
// JSON null counts as absent, as Hugging Face configs write unset options as null.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace semskip {

class JsonKeys {
 public:
  // `obj` must outlive this reader; `prefix` is prepended to key names in messages.
  JsonKeys(const nlohmann::json& obj, std::string source, std::string prefix = "");

  const std::string& source() const { return source_; }
  // "prefix" + key, as messages write it.
  std::string name(const std::string& key) const { return prefix_ + key; }

  bool has(const std::string& key) const;                  // present and not null
  const nlohmann::json& at(const std::string& key) const;  // throws when absent
  // A reader over the object held by `key` (which must be an object).
  JsonKeys object(const std::string& key) const;

  int64_t req_int(const std::string& key) const;
  int64_t opt_int(const std::string& key, int64_t fallback) const;
  double req_number(const std::string& key) const;
  double opt_number(const std::string& key, double fallback) const;
  bool opt_bool(const std::string& key, bool fallback) const;
  std::string req_string(const std::string& key) const;
  std::string opt_string(const std::string& key, const std::string& fallback) const;
  // An integer, a list of integers or absent (empty list).
  std::vector<int64_t> opt_int_or_int_list(const std::string& key) const;
  std::vector<int64_t> opt_int_list(const std::string& key) const;
  std::vector<std::string> opt_string_list(const std::string& key) const;

  // The same with a lower bound, for sizes and counts.
  int64_t req_int_at_least(const std::string& key, int64_t min) const;
  int64_t opt_int_at_least(const std::string& key, int64_t fallback, int64_t min) const;

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

 private:
  int64_t as_int(const std::string& key, const nlohmann::json& v) const;
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;

  const nlohmann::json& obj_;
  std::string source_;
  std::string prefix_;
};

}  // namespace semskip
