// semskip tokenize: encode text with a tokenizer.json, or check one against a file of cases.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/paths.h"
#include "drivers/command.h"
#include "tokenizer/tokenizer.h"

namespace semskip {

namespace {

using nlohmann::json;

constexpr size_t kMismatchesShown = 5;

struct TokenizeOptions {
  std::string tokenizer;  // tokenizer.json; empty: the embedded default model's
  std::string text;
  std::string check;      // JSONL cases file
  bool json = false;
};

std::string show(const std::string& s) {
  std::string quoted = json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  if (quoted.size() > 100) quoted = quoted.substr(0, 97) + "...";
  return quoted;
}

struct Case {
  size_t line;
  std::string text;
  std::vector<int32_t> ids;
  bool has_decoded = false;
  std::string decoded;
};

Case parse_case(const std::string& path, size_t line_no, const std::string& line) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::parse_error& e) {
    SEMSKIP_THROW_MSG("{}:{}: not valid JSON: {}", path, line_no, e.what());
  }
  SEMSKIP_THROW_IF_NOT_MSG(j.is_object() && j.contains("text") && j["text"].is_string(),
                           "{}:{}: expected an object with a \"text\" string", path, line_no);
  SEMSKIP_THROW_IF_NOT_MSG(j.contains("ids") && j["ids"].is_array(), "{}:{}: expected an \"ids\" list",
                           path, line_no);
  Case c{line_no, j["text"].get<std::string>(), {}, false, {}};
  for (const json& id : j["ids"]) {
    SEMSKIP_THROW_IF_NOT_MSG(id.is_number_integer(), "{}:{}: \"ids\" holds a non-integer {}", path,
                             line_no, id.dump());
    c.ids.push_back(id.get<int32_t>());
  }
  if (j.contains("decoded")) {
    SEMSKIP_THROW_IF_NOT_MSG(j["decoded"].is_string(), "{}:{}: \"decoded\" must be a string", path, line_no);
    c.has_decoded = true;
    c.decoded = j["decoded"].get<std::string>();
  }
  return c;
}

// Why `c` fails, or "" when our ids and decode both agree with it.
std::string check_case(const Tokenizer& tok, const Case& c) {
  const std::vector<int32_t> ids = tok.encode(c.text);
  if (ids != c.ids) {
    size_t at = 0;
    while (at < ids.size() && at < c.ids.size() && ids[at] == c.ids[at]) ++at;
    return fmt::format("ids differ at position {}: expected [{}], got [{}]", at, fmt::join(c.ids, ", "),
                       fmt::join(ids, ", "));
  }
  if (c.has_decoded) {
    const std::string decoded = tok.decode(c.ids);
    if (decoded != c.decoded) return fmt::format("decode gives {}, expected {}", show(decoded), show(c.decoded));
  }
  return {};
}

int run_check(const Tokenizer& tok, const TokenizeOptions& o) {
  std::ifstream in(o.check);
  SEMSKIP_THROW_IF_NOT_MSG(in.good(), "cannot open cases file {}", o.check);
  std::vector<Case> cases;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    cases.push_back(parse_case(o.check, line_no, line));
  }
  size_t n_match = 0;
  json mismatches = json::array();
  for (const Case& c : cases) {
    std::string why;
    try {
      why = check_case(tok, c);
    } catch (const Error& e) {
      why = e.what();
    }
    if (why.empty()) {
      ++n_match;
    } else {
      mismatches.push_back({{"line", c.line}, {"text", c.text}, {"problem", why}});
    }
  }
  if (o.json) {
    json out = {{"cases", o.check}, {"tokenizer", o.tokenizer}, {"total", cases.size()},
                {"matched", n_match}, {"mismatches", mismatches}};
    std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    std::printf("%zu/%zu cases match (%s with %s)\n", n_match, cases.size(), o.check.c_str(),
                o.tokenizer.c_str());
    for (size_t i = 0; i < mismatches.size() && i < kMismatchesShown; ++i) {
      const json& m = mismatches[i];
      std::printf("  mismatch at %s:%zu: %s\n    text: %s\n", o.check.c_str(), m["line"].get<size_t>(),
                  m["problem"].get<std::string>().c_str(), show(m["text"].get<std::string>()).c_str());
    }
    if (mismatches.size() > kMismatchesShown) {
      std::printf("  ... and %zu more mismatches\n", mismatches.size() - kMismatchesShown);
    }
  }
  return mismatches.empty() ? 0 : 1;
}

int run_tokenize(TokenizeOptions o) {
  if (o.tokenizer.empty()) o.tokenizer = embedded_model_dir(kDefaultModel) + "/tokenizer.json";
  const Tokenizer tok = Tokenizer::from_file(o.tokenizer);
  if (!o.check.empty()) return run_check(tok, o);
  const std::vector<int32_t> ids = tok.encode(o.text);
  if (o.json) {
    json tokens = json::array();
    for (int32_t id : ids) tokens.push_back(tok.id_to_token(id));
    const json out = {{"ids", ids}, {"tokens", tokens}};
    std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s\n", fmt::format("{}", fmt::join(ids, " ")).c_str());
  }
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app, CommandRegistry& reg) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = reg.add(app, "tokenize",
                          "Encode text with a Hugging Face tokenizer.json, or check it against expected ids",
                          [o] { return run_tokenize(*o); });
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json (default: the embedded default model's)");
  CLI::Option_group* input = sub->add_option_group("input", "what to tokenize (one of)");
  input->add_option("--text", o->text, "text to encode; prints its ids");
  input->add_option("--check", o->check,
                    "JSONL file of {\"text\", \"ids\"[, \"decoded\"]} cases; exits 1 on any mismatch");
  input->require_option(1);
  sub->add_flag("--json", o->json, "print JSON (ids and tokens; or the check summary)");
}

}  // namespace semskip
