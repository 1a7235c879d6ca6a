#include "workloads/json_record.h"

#include <cmath>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

nlohmann::json parse_json_record(std::string_view text, const std::string& where) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    SEMSKIP_THROW_MSG("{}: invalid JSON: {}", where, e.what());
  }
}

std::optional<std::string> json_optional_string(const nlohmann::json& obj, std::string_view key,
                                                const std::string& where) {
  SEMSKIP_THROW_IF_NOT_MSG(obj.is_object(), "{}: expected a JSON object, found {}", where,
                           obj.type_name());
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  SEMSKIP_THROW_IF_NOT_MSG(it->is_string(), "{}: field '{}' must be a string, found {}", where, key,
                           it->type_name());
  return it->get<std::string>();
}

std::string json_string(const nlohmann::json& obj, std::string_view key, const std::string& where) {
  std::optional<std::string> v = json_optional_string(obj, key, where);
  SEMSKIP_THROW_IF_NOT_MSG(v.has_value(), "{}: missing field '{}'", where, key);
  return *v;
}

double json_seconds(const nlohmann::json& obj, std::string_view key, const std::string& where) {
  SEMSKIP_THROW_IF_NOT_MSG(obj.is_object(), "{}: expected a JSON object", where);
  auto it = obj.find(key);
  SEMSKIP_THROW_IF_NOT_MSG(it != obj.end() && !it->is_null(),
                           "{}: missing arrival-time field '{}'", where, key);
  double v = 0;
  if (it->is_number()) {
    v = it->get<double>();
  } else if (it->is_string()) {
    v = parse_double(it->get<std::string>(), fmt::format("{}: field '{}'", where, key));
  } else {
    SEMSKIP_THROW_MSG("{}: field '{}' must be a number of seconds, found {}", where, key,
                      it->type_name());
  }
  SEMSKIP_THROW_IF_NOT_MSG(std::isfinite(v) && v >= 0,
                           "{}: field '{}' must be a finite time >= 0, found {}", where, key, v);
  return v;
}

std::optional<std::string> json_optional_id(const nlohmann::json& obj, std::string_view key,
                                            const std::string& where) {
  SEMSKIP_THROW_IF_NOT_MSG(obj.is_object(), "{}: expected a JSON object, found {}", where,
                           obj.type_name());
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  SEMSKIP_THROW_MSG("{}: field '{}' must be a string or an integer, found {}", where, key,
                    it->type_name());
}

}  // namespace semskip
