// libFuzzer target: the TOML file of `semskip run --config`. The run checks the text
// (core/toml_text.h: no non-ASCII character outside strings and comments, on which toml++ 3.3
// reaches an unreachable point, this target's first finding) and reads it with toml++
// (toml::parse_file, the library compiled in header-only mode here so that it is instrumented)
// and walks the root table as apply_toml in drivers/cmd_run.cpp does: every key's value is a
// scalar (string, integer, float, boolean) or an array of scalars, turned into the option's
// text; descriptor keys (policy, index, workload) then go to their parsers. Text that is not
// TOML must be refused with a parse_error that has a description and a position inside the
// text (the run prints file:line:column); a value of another type, or a descriptor that does
// not parse, is refused with semskip::Error. A crash, a sanitiser report, a hang or another
// exception is a finding.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// As in the run's build of the library (g++ with NDEBUG): toml++'s internal assertions off.
// With them on, toml++ 3.3 asserts in parse_time that a date's 'T' is followed by a digit
// (`seed = 1979-05-27Tx`), a precondition its parser does not ensure; the release build
// refuses that text with "expected 2-digit hour" at line:column, which this target checks.
#define TOML_ASSERT(expr) static_cast<void>(0)
#define TOML_HEADER_ONLY 1
#include <toml++/toml.h>

#include <fmt/format.h>

#include "core/error.h"
#include "core/toml_text.h"
#include "index/descriptor.h"
#include "skip/descriptor.h"
#include "workloads/workload_spec.h"

namespace {

// toml_scalar of drivers/cmd_run.cpp.
std::string scalar_text(const toml::node& n, const std::string& key) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto f = n.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  SEMSKIP_THROW_MSG("run.toml: key '{}' must be a string, number or boolean (or an array of them)", key);
}

void check_descriptor(const std::string& key, const std::string& text) {
  if (key == "policy") semskip::Descriptor::parse(text);
  else if (key == "index") semskip::IndexDescriptor::parse(text);
  else if (key == "workload") semskip::WorkloadSpec::parse(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    semskip::check_toml_text(text, "run.toml");  // what apply_toml checks before parsing
  } catch (const semskip::Error& e) {
    if (std::string(e.what()).rfind("run.toml:", 0) != 0) std::abort();
    return 0;
  }
  toml::table root;
  try {
    root = toml::parse(text, std::string_view("run.toml"));
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    if (e.description().empty() || at.line < 1 || at.column < 1) std::abort();
    // A position past the text's lines would send the user to a line that is not there.
    int64_t lines = 1;
    for (char c : text) lines += c == '\n';
    if (static_cast<int64_t>(at.line) > lines) std::abort();
    return 0;
  }
  for (const auto& [k, node] : root) {
    const std::string key(k.str());
    try {
      std::vector<std::string> texts;
      if (const toml::array* arr = node.as_array()) {
        for (const toml::node& item : *arr) texts.push_back(scalar_text(item, key));
      } else {
        texts.push_back(scalar_text(node, key));
      }
      for (const std::string& t : texts) check_descriptor(key, t);
    } catch (const semskip::Error& e) {
      if (std::string(e.what()).empty()) std::abort();
    }
  }
  return 0;
}
