#pragma once
// Typed access to the fields of one JSON record, with messages that name the record's place
// ("file:line") — shared by the JSON and JSONL loaders.

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace semskip {

// Parses one record; semskip::Error "<where>: invalid JSON: ..." otherwise.
nlohmann::json parse_json_record(std::string_view text, const std::string& where);

// Field `key` of object `obj` as a string; semskip::Error naming `where` and the key when it
// is missing (required) or not a string.
std::string json_string(const nlohmann::json& obj, std::string_view key, const std::string& where);
std::optional<std::string> json_optional_string(const nlohmann::json& obj, std::string_view key,
                                                const std::string& where);
// A number (or numeric string) field in seconds, for arrival-time traces.
double json_seconds(const nlohmann::json& obj, std::string_view key, const std::string& where);
// An id written either as a string or as an integer.
std::optional<std::string> json_optional_id(const nlohmann::json& obj, std::string_view key,
                                            const std::string& where);

}  // namespace semskip
