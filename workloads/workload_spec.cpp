#include "workloads/workload_spec.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/strings.h"
#include "workloads/samples_dir.h"

namespace semskip {

namespace {

std::vector<std::string> known_keys(const WorkloadKind& kind) {
  std::vector<std::string> keys;
  for (const WorkloadOption& o : kind.options) keys.push_back(o.key);
  for (const WorkloadOption& o : common_workload_options()) keys.push_back(o.key);
  return keys;
}

}  // namespace

WorkloadSpec WorkloadSpec::parse(std::string_view text) {
  WorkloadSpec spec;
  spec.text_ = std::string(text);
  std::string body;
  size_t colon = text.find(':');
  size_t comma = text.find(',');
  // The kind ends at the first ':' unless a ',' comes first ("synthetic,zipf=1" is fine too).
  if (colon != std::string_view::npos && (comma == std::string_view::npos || colon < comma)) {
    spec.kind_ = trim(text.substr(0, colon));
    body = std::string(text.substr(colon + 1));
  } else if (comma != std::string_view::npos) {
    spec.kind_ = trim(text.substr(0, comma));
    body = std::string(text.substr(comma + 1));
  } else {
    spec.kind_ = trim(text);
  }
  SEMSKIP_THROW_IF_NOT_MSG(!spec.kind_.empty(), "workload '{}': no kind before ':'", text);
  const WorkloadKind& kind = [&]() -> const WorkloadKind& {
    try {
      return find_workload_kind(spec.kind_);
    } catch (const Error& e) {
      SEMSKIP_THROW_MSG("workload '{}': {}", text, e.what());
    }
  }();

  for (const WorkloadOption& o : kind.options) spec.values_[o.key] = o.default_value;
  for (const WorkloadOption& o : common_workload_options()) spec.values_[o.key] = o.default_value;

  if (body.empty()) return spec;
  std::vector<std::string> fields = split(body, ',');
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string field = trim(fields[i]);
    size_t eq = field.find('=');
    if (eq == std::string::npos) {
      SEMSKIP_THROW_IF_NOT_MSG(i == 0 && !field.empty(),
                               "workload '{}': '{}' is not key=value (only the first field may be "
                               "a path)",
                               text, field);
      SEMSKIP_THROW_IF_NOT_MSG(kind.takes_path,
                               "workload '{}': kind '{}' reads no file, but '{}' was given as a "
                               "path",
                               text, kind.name, field);
      spec.path_ = field;
      continue;
    }
    std::string key = trim(field.substr(0, eq));
    std::string value = trim(field.substr(eq + 1));
    if (key == "path") {
      SEMSKIP_THROW_IF_NOT_MSG(kind.takes_path, "workload '{}': kind '{}' reads no file", text,
                               kind.name);
      SEMSKIP_THROW_IF_NOT_MSG(!value.empty(), "workload '{}': empty path", text);
      spec.path_ = value;
      continue;
    }
    SEMSKIP_THROW_IF_NOT_MSG(spec.values_.count(key) == 1,
                             "workload '{}': unknown option '{}' for kind '{}' (known: {})", text,
                             key, kind.name, join(known_keys(kind), ", "));
    spec.set(key, value);
  }
  return spec;
}

const WorkloadOption& WorkloadSpec::option(std::string_view key) const {
  const WorkloadKind& kind = find_workload_kind(kind_);
  for (const WorkloadOption& o : kind.options)
    if (o.key == key) return o;
  for (const WorkloadOption& o : common_workload_options())
    if (o.key == key) return o;
  SEMSKIP_THROW_MSG("workload '{}': unknown option '{}' for kind '{}' (known: {})", text_, key,
                    kind_, join(known_keys(kind), ", "));
}

void WorkloadSpec::validate(const WorkloadOption& opt, const std::string& value) const {
  const std::string what = fmt::format("workload '{}', option {}", text_, opt.key);
  switch (opt.type) {
    case OptionType::integer: parse_int(value, what); break;
    case OptionType::number: {
      double v = parse_double(value, what);
      SEMSKIP_THROW_IF_NOT_MSG(std::isfinite(v), "{}: '{}' is not finite", what, value);
      break;
    }
    case OptionType::boolean: parse_bool(value, what); break;
    case OptionType::choice:
      SEMSKIP_THROW_IF_NOT_MSG(
          std::find(opt.choices.begin(), opt.choices.end(), value) != opt.choices.end(),
          "{}: '{}' is not one of {}", what, value, join(opt.choices, ", "));
      break;
    case OptionType::text: break;
  }
  // Keys whose text has its own grammar are checked here too, so that a bad spec fails when
  // it is parsed, not when the workload is half read.
  if (opt.key == "max_requests" && value != "all") {
    SEMSKIP_THROW_IF_NOT_MSG(parse_int(value, what) >= 0, "{}: must be 'all' or >= 0", what);
  } else if (opt.key == "output_len" && value != "reference") {
    SEMSKIP_THROW_IF_NOT_MSG(parse_int(value, what) >= 0, "{}: must be 'reference' or >= 0", what);
  } else if (opt.key == "arrivals" && value != "none") {
    if (starts_with(value, "poisson:")) {
      double rate = parse_double(value.substr(8), what);
      SEMSKIP_THROW_IF_NOT_MSG(rate > 0 && std::isfinite(rate), "{}: rate must be > 0", what);
    } else {
      SEMSKIP_THROW_IF_NOT_MSG(starts_with(value, "trace:") && value.size() > 6,
                               "{}: '{}' is not none, poisson:<rate> or trace:<field>", what,
                               value);
    }
  } else if (opt.key == "seed") {
    SEMSKIP_THROW_IF_NOT_MSG(parse_int(value, what) >= 0, "{}: must be >= 0", what);
  }
}

std::string WorkloadSpec::path() const {
  if (!path_.empty()) return path_;
  const WorkloadKind& kind = find_workload_kind(kind_);
  if (!kind.takes_path) return {};
  return sample_path(kind.default_sample);
}

std::string WorkloadSpec::describe() const {
  const WorkloadKind& kind = find_workload_kind(kind_);
  std::vector<std::string> parts;
  for (const WorkloadOption& o : kind.options) parts.push_back(o.key + "=" + get(o.key));
  for (const WorkloadOption& o : common_workload_options()) parts.push_back(o.key + "=" + get(o.key));
  std::string head = kind_;
  if (kind.takes_path) head += ":" + path();
  return head + (kind.takes_path ? "," : ":") + join(parts, ",");
}

const std::string& WorkloadSpec::get(std::string_view key) const {
  auto it = values_.find(key);
  SEMSKIP_ASSERT(it != values_.end() && "option missing from the kind table");
  return it->second;
}

int64_t WorkloadSpec::get_int(std::string_view key) const {
  return parse_int(get(key), fmt::format("workload '{}', option {}", text_, key));
}

double WorkloadSpec::get_double(std::string_view key) const {
  return parse_double(get(key), fmt::format("workload '{}', option {}", text_, key));
}

bool WorkloadSpec::get_bool(std::string_view key) const {
  return parse_bool(get(key), fmt::format("workload '{}', option {}", text_, key));
}

void WorkloadSpec::set(std::string_view key, const std::string& value) {
  const WorkloadOption& opt = option(key);
  validate(opt, value);
  values_[opt.key] = value;
}

void WorkloadSpec::apply(const WorkloadOverrides& o) {
  if (o.max_requests) set("max_requests", std::to_string(*o.max_requests));
  if (o.on_bad_line) set("on_bad_line", *o.on_bad_line);
  if (o.arrivals) set("arrivals", *o.arrivals);
  if (o.seed) set("seed", std::to_string(*o.seed));
}

std::optional<int64_t> WorkloadSpec::max_requests() const {
  const std::string& v = get("max_requests");
  if (v == "all") return std::nullopt;
  return get_int("max_requests");
}

BadLinePolicy WorkloadSpec::on_bad_line() const {
  return get("on_bad_line") == "skip" ? BadLinePolicy::skip : BadLinePolicy::error;
}

uint64_t WorkloadSpec::seed() const { return static_cast<uint64_t>(get_int("seed")); }

std::optional<std::string> WorkloadSpec::trace_field() const {
  const std::string& a = arrivals();
  if (starts_with(a, "trace:")) return a.substr(6);
  return std::nullopt;
}

std::optional<int64_t> WorkloadSpec::output_len() const {
  const std::string& v = get("output_len");
  if (v == "reference") return std::nullopt;
  return get_int("output_len");
}

}  // namespace semskip
