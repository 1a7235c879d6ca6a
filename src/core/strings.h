#pragma once
// Small string helpers shared by the descriptor and config parsers.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace semskip {

// Splits on every occurrence of sep; an empty input gives one empty field.
std::vector<std::string> split(std::string_view s, char sep);
std::string trim(std::string_view s);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);

// Strict numeric parsing: the whole string must be the number, else semskip::Error whose
// message names `what` (for example "option --k" or "descriptor 'faiss:HNSW32|efSearch=x'").
int64_t parse_int(std::string_view s, std::string_view what);
double parse_double(std::string_view s, std::string_view what);
bool parse_bool(std::string_view s, std::string_view what);

// Reads a whole file; semskip::Error naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace semskip
