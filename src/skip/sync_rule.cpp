#include "skip/sync_rule.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

namespace {

double parse_fraction(const std::string& text, const std::string& what, const std::string& rule) {
  const double f = parse_double(text, what);
  SEMSKIP_THROW_IF_NOT_MSG(f >= 0.0 && f <= 1.0, "{}: the fraction of '{}' must be in [0, 1], got {}", what, rule,
                           f);
  return f;
}

}  // namespace

SyncRule SyncRule::parse(const std::string& text, const std::string& what) {
  SyncRule r;
  if (text == "token") return r;
  if (text == "global" || text == "global:group") {
    r.mode = SyncMode::global;
    r.fraction = 0.5;
    r.over_group = text == "global:group";
    return r;
  }
  if (text.rfind("global:group:", 0) == 0) {
    r.mode = SyncMode::global;
    r.over_group = true;
    r.fraction = parse_fraction(text.substr(13), what, text);
    return r;
  }
  for (const char* name : {"batch", "global"}) {
    const std::string prefix = std::string(name) + ":";
    if (text.rfind(prefix, 0) == 0) {
      r.mode = std::string(name) == "batch" ? SyncMode::batch : SyncMode::global;
      r.fraction = parse_fraction(text.substr(prefix.size()), what, text);
      return r;
    }
  }
  SEMSKIP_THROW_MSG("{}: unknown sync rule '{}' (expected token, batch:<fraction>, global[:<fraction>] or "
                    "global:group[:<fraction>])",
                    what, text);
}

std::string SyncRule::describe() const {
  switch (mode) {
    case SyncMode::token: return "token";
    case SyncMode::batch: return fmt::format("batch:{}", fraction);
    case SyncMode::global: return fmt::format(over_group ? "global:group:{}" : "global:{}", fraction);
  }
  SEMSKIP_ASSERT(false);
  return "";
}

SyncDecision decide_sync(const SyncRule& rule, const SumOverRanks& sum, int64_t lookups, int64_t hits) {
  SyncDecision d;
  d.group_lookups = lookups;
  d.group_hits = hits;
  if (rule.mode == SyncMode::token) return d;
  if (rule.mode == SyncMode::global && sum) {
    std::vector<int64_t> v = {lookups, hits};
    sum(v);
    d.group_lookups = v[0];
    d.group_hits = v[1];
  }
  d.apply = d.group_lookups > 0 &&
            static_cast<double>(d.group_hits) >= rule.fraction * static_cast<double>(d.group_lookups);
  // Every lookup of the job hit (hence applied, whatever f), or no rank looked anything up.
  if (rule.mode == SyncMode::global) d.all_skip = d.group_hits == d.group_lookups;
  return d;
}

}  // namespace semskip
