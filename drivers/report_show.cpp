// semskip report show | compare | export: tables in shown units (text, markdown) or exact
// values (csv, json, jsonl); configurations of several reports side by side with their
// differences; every table of a report as CSV files.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "drivers/report_verbs.h"
#include "reports/run_info.h"
#include "reports/table_text.h"

namespace semskip {

nlohmann::ordered_json report_attrs_json(const std::vector<std::pair<std::string, report::AttrValue>>& attrs) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, value] : attrs)
    out[name] = std::visit([](const auto& x) { return nlohmann::ordered_json(x); }, value);
  return out;
}

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using report::Column;
using report::ObjectInfo;
using report::ObjectKind;
using report::ReportReader;
using report::Table;
using report::TextColumn;

const std::vector<std::string> kFormats = {"text", "markdown", "csv", "json", "jsonl"};

void put(const std::string& s) { std::fputs(s.c_str(), stdout); }
std::string dump(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

json value_json(const Column& c, size_t row) {
  return std::visit([row](const auto& v) { return json(v.at(row)); }, c.data);
}
json attrs_json(const std::vector<std::pair<std::string, report::AttrValue>>& attrs) {
  return report_attrs_json(attrs);
}
bool is_numeric(const Column& c) { return !std::holds_alternative<std::vector<std::string>>(c.data); }
std::optional<double> number_at(const Column& c, size_t row) {
  if (const auto* i = std::get_if<std::vector<int64_t>>(&c.data)) return static_cast<double>(i->at(row));
  if (const auto* d = std::get_if<std::vector<double>>(&c.data)) return d->at(row);
  return std::nullopt;
}

std::string attr_type(const report::AttrValue& v) {
  if (std::holds_alternative<int64_t>(v)) return "int64";
  if (std::holds_alternative<double>(v)) return "float64";
  return "string";
}

std::string attrs_text(const std::vector<std::pair<std::string, report::AttrValue>>& attrs, bool markdown) {
  TextColumn names{"attribute", false, {}};
  TextColumn values{"value", false, {}};
  for (const auto& [name, value] : attrs) {
    names.cells.push_back(name);
    values.cells.push_back(report::attr_to_string(value));
  }
  return markdown ? report::render_markdown({names, values}) : report::render_text({names, values});
}

// ---------------------------------------------------------------- show

struct ShowOptions {
  std::vector<std::string> files;
  std::vector<std::string> tables;
  std::string columns;  // comma-separated; empty: every column
  std::string format = "text";
};

struct Section {
  const ReportReader* reader;
  ObjectInfo object;
  Table table;  // the selected columns, in the order asked for (tables only)
};

// The table with only `names`, in that order; an error naming what it has otherwise.
std::optional<Table> pick_columns(const Table& t, const std::vector<std::string>& names, const std::string& where,
                                  bool must) {
  if (names.empty()) return t;
  Table out;
  for (const std::string& n : names) {
    const Column* c = t.find(n);
    if (!c) {
      if (!must) return std::nullopt;
      std::vector<std::string> have;
      for (const Column& col : t.columns()) have.push_back(col.name);
      SEMSKIP_THROW_MSG("{} has no column '{}' (its columns: {})", where, n, join(have, ", "));
    }
    std::visit([&](const auto& v) { out.add(n, v); }, c->data);
  }
  return out;
}

std::vector<std::string> column_list(const std::string& s) {
  std::vector<std::string> out;
  for (std::string& c : split(s, ',')) {
    const std::string name = std::string(trim(c));
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

int run_show(const ShowOptions& opt) {
  std::vector<std::unique_ptr<ReportReader>> readers;
  for (const std::string& f : opt.files) readers.push_back(open_semskip_report(f));
  const std::vector<std::string> columns = column_list(opt.columns);
  // Everything is read and checked before anything is printed.
  std::vector<Section> sections;
  for (const auto& r : readers) {
    size_t n_kept = 0;
    for (const ObjectInfo& o : report_selected(*r, opt.tables)) {
      if (o.kind == ObjectKind::array) {
        // --columns selects table columns; arrays are shown only when named or when no column is asked for.
        if (columns.empty() || !opt.tables.empty()) sections.push_back({r.get(), o, {}});
        continue;
      }
      // With --table every named table must have the columns; without, tables lacking one are left out.
      std::optional<Table> t = pick_columns(r->read_table(o.path), columns,
                                            fmt::format("table '{}' of '{}'", o.path, r->path()), !opt.tables.empty());
      if (!t) continue;
      sections.push_back({r.get(), o, std::move(*t)});
      ++n_kept;
    }
    SEMSKIP_THROW_IF_NOT_MSG(columns.empty() || n_kept > 0, "no table of '{}' has all the columns {}", r->path(),
                             opt.columns);
  }
  const bool with_attrs = opt.tables.empty() && columns.empty();

  if (opt.format == "text" || opt.format == "markdown") {
    const bool md = opt.format == "markdown";
    std::string out;
    const ReportReader* current = nullptr;
    auto start_file = [&](const ReportReader* r) {
      if (current) out += "\n";
      current = r;
      out += fmt::format("# {}\n", r->path());
      if (with_attrs) out += "\n" + attrs_text(r->attrs(), md);
    };
    for (const auto& r : readers) {
      start_file(r.get());
      for (const Section& s : sections) {
        if (s.reader != r.get()) continue;
        if (s.object.kind == ObjectKind::array) {
          std::vector<std::string> dims;
          for (int64_t d : s.object.shape) dims.push_back(std::to_string(d));
          out += fmt::format("\n## {}: float64 array [{}]\n", s.object.path, join(dims, ", "));
          continue;
        }
        const int64_t n = s.object.shape.at(0);
        out += fmt::format("\n## {} ({})\n", s.object.path, n == 1 ? std::string("1 row") : fmt::format("{} rows", n));
        auto attrs = r->attrs(s.object.path);
        if (!attrs.empty()) out += attrs_text(attrs, md) + "\n";
        std::vector<TextColumn> cols;
        for (const Column& c : s.table.columns()) cols.push_back(report::to_shown_column(c));
        out += md ? report::render_markdown(cols) : report::render_text(cols);
      }
    }
    put(out);
    return 0;
  }

  if (opt.format == "csv") {
    std::vector<const Section*> tables;
    for (const Section& s : sections) {
      if (s.object.kind == ObjectKind::table) tables.push_back(&s);
    }
    SEMSKIP_THROW_IF_NOT_MSG(!tables.empty(), "--format csv: nothing to write (arrays are not tables)");
    for (const Section* s : tables) {
      SEMSKIP_THROW_IF_NOT_MSG(s->object.path == tables[0]->object.path,
                               "--format csv writes one table, and the selection has '{}' and '{}': pick one "
                               "with --table, or write them all with `semskip report export FILE --csv DIR`",
                               tables[0]->object.path, s->object.path);
    }
    // Several files: a leading `file` column and the union of their columns.
    const bool several = tables.size() > 1;
    std::vector<std::string> header;
    if (several) header.push_back("file");
    for (const Section* s : tables) {
      for (const Column& c : s->table.columns()) {
        if (std::find(header.begin(), header.end(), c.name) == header.end()) header.push_back(c.name);
      }
    }
    std::string out = report::csv_line(header);
    for (const Section* s : tables) {
      for (size_t i = 0; i < s->table.n_rows(); ++i) {
        std::vector<std::string> row;
        for (const std::string& h : header) {
          if (several && h == "file" && &h == &header[0]) {
            row.push_back(s->reader->path());
            continue;
          }
          const Column* c = s->table.find(h);
          row.push_back(c ? report::exact_cell(*c, i) : std::string());
        }
        out += report::csv_line(row);
      }
    }
    put(out);
    return 0;
  }

  auto row_json = [](const Table& t, size_t i, json base) {
    for (const Column& c : t.columns()) base[c.name] = value_json(c, i);
    return base;
  };
  if (opt.format == "jsonl") {
    std::string out;
    for (const Section& s : sections) {
      if (s.object.kind == ObjectKind::array) {
        report::Array a = s.reader->read_array(s.object.path);
        out += dump(json{{"file", s.reader->path()}, {"array", s.object.path}, {"shape", a.shape}, {"values", a.values}}, -1) + "\n";
        continue;
      }
      for (size_t i = 0; i < s.table.n_rows(); ++i) {
        out += dump(row_json(s.table, i, json{{"file", s.reader->path()}, {"table", s.object.path}}), -1) + "\n";
      }
    }
    put(out);
    return 0;
  }

  // json: one list, one object per file, each table a list of row objects.
  json all = json::array();
  for (const auto& r : readers) {
    json file = {{"file", r->path()}};
    if (with_attrs) file["attributes"] = attrs_json(r->attrs());
    json tables = json::object();
    json arrays = json::object();
    for (const Section& s : sections) {
      if (s.reader != r.get()) continue;
      if (s.object.kind == ObjectKind::array) {
        report::Array a = r->read_array(s.object.path);
        arrays[s.object.path] = {{"shape", a.shape}, {"values", a.values}};
        continue;
      }
      json rows = json::array();
      for (size_t i = 0; i < s.table.n_rows(); ++i) rows.push_back(row_json(s.table, i, json::object()));
      tables[s.object.path] = {{"attributes", attrs_json(r->attrs(s.object.path))}, {"rows", rows}};
    }
    file["tables"] = std::move(tables);
    file["arrays"] = std::move(arrays);
    all.push_back(std::move(file));
  }
  put(dump(all, 2) + "\n");
  return 0;
}

// ---------------------------------------------------------------- compare

struct CompareOptions {
  std::vector<std::string> files;
  std::string table = "/summary";
  std::string format = "text";
};

// A configuration's key: (policy, index, k-th row with that pair in the report).
struct Key {
  std::string policy, index;
  int occurrence = 0;
  bool operator==(const Key& o) const { return policy == o.policy && index == o.index && occurrence == o.occurrence; }
};

struct CompareRow {
  Key key;
  std::string column;
  std::vector<std::optional<double>> value, lo, hi;  // per report
};

std::vector<Key> row_keys(const Table& t, const std::string& where) {
  const Column* policy = t.find("policy");
  SEMSKIP_THROW_IF_NOT_MSG(policy && !is_numeric(*policy), "{} has no string column 'policy' to key its rows", where);
  const Column* index = t.find("index");
  std::vector<Key> keys;
  for (size_t i = 0; i < t.n_rows(); ++i) {
    Key k{report::exact_cell(*policy, i), index ? report::exact_cell(*index, i) : std::string(), 0};
    for (const Key& prev : keys) {
      if (prev.policy == k.policy && prev.index == k.index) ++k.occurrence;
    }
    keys.push_back(k);
  }
  return keys;
}

// config_json flattened to dotted keys, values as compact JSON text.
void flatten(const nlohmann::json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (j.is_object() && !j.empty()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    return;
  }
  out.emplace_back(prefix, j.dump());
}

std::vector<std::pair<std::string, std::string>> config_of(const ReportReader& r) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!r.has_attr("config_json")) return out;
  const report::AttrValue v = r.attr("config_json");
  const std::string* text = std::get_if<std::string>(&v);
  if (!text) return out;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) {
    out.emplace_back("(config_json)", "not valid JSON");
    return out;
  }
  flatten(j, "", out);
  return out;
}

int run_compare(const CompareOptions& opt) {
  SEMSKIP_THROW_IF_NOT_MSG(opt.files.size() >= 2, "compare needs at least two reports, got {}", opt.files.size());
  std::vector<std::unique_ptr<ReportReader>> readers;
  for (const std::string& f : opt.files) readers.push_back(open_semskip_report(f));
  const std::string name = report_object_name(opt.table);
  std::vector<Table> tables;
  std::vector<std::vector<Key>> keys;
  for (const auto& r : readers) {
    SEMSKIP_THROW_IF_NOT_MSG(r->has(name), "report '{}' has no table '{}' to compare", r->path(), name);
    tables.push_back(r->read_table(name));
    keys.push_back(row_keys(tables.back(), fmt::format("table '{}' of '{}'", name, r->path())));
  }
  // Labels: the file names, or the paths as given when two file names are the same.
  std::vector<std::string> labels;
  for (const auto& r : readers) labels.push_back(fs::path(r->path()).filename().string());
  for (size_t i = 0; i < labels.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (labels[i] == labels[j]) {
        for (size_t k = 0; k < labels.size(); ++k) labels[k] = readers[k]->path();
      }
    }
  }
  // Numeric columns in order of first appearance; x_lo / x_hi go with x.
  std::vector<std::string> metrics;
  for (const Table& t : tables) {
    for (const Column& c : t.columns()) {
      if (is_numeric(c) && std::find(metrics.begin(), metrics.end(), c.name) == metrics.end()) metrics.push_back(c.name);
    }
  }
  auto has_metric = [&](const std::string& n) { return std::find(metrics.begin(), metrics.end(), n) != metrics.end(); };
  std::vector<std::string> shown_metrics;
  for (const std::string& m : metrics) {
    bool bound = false;
    for (const char* suffix : {"_lo", "_hi"}) bound = bound || (ends_with(m, suffix) && has_metric(m.substr(0, m.size() - 3)));
    if (!bound) shown_metrics.push_back(m);
  }
  std::vector<Key> all_keys;
  for (const auto& ks : keys) {
    for (const Key& k : ks) {
      if (std::find(all_keys.begin(), all_keys.end(), k) == all_keys.end()) all_keys.push_back(k);
    }
  }
  const size_t nf = readers.size();
  std::vector<CompareRow> rows;
  for (const Key& k : all_keys) {
    for (const std::string& m : shown_metrics) {
      CompareRow row{k, m, std::vector<std::optional<double>>(nf), std::vector<std::optional<double>>(nf),
                     std::vector<std::optional<double>>(nf)};
      bool any = false;
      for (size_t f = 0; f < nf; ++f) {
        auto it = std::find(keys[f].begin(), keys[f].end(), k);
        if (it == keys[f].end()) continue;
        const size_t i = static_cast<size_t>(it - keys[f].begin());
        auto get = [&](const std::string& col) -> std::optional<double> {
          const Column* c = tables[f].find(col);
          return c ? number_at(*c, i) : std::nullopt;
        };
        row.value[f] = get(m);
        row.lo[f] = get(m + "_lo");
        row.hi[f] = get(m + "_hi");
        any = any || row.value[f].has_value();
      }
      if (any) rows.push_back(std::move(row));
    }
  }
  auto overlap = [](const CompareRow& r, size_t f) -> std::optional<bool> {
    if (!r.lo[0] || !r.hi[0] || !r.lo[f] || !r.hi[f]) return std::nullopt;
    return *r.lo[0] <= *r.hi[f] && *r.lo[f] <= *r.hi[0];
  };
  auto diff = [](const CompareRow& r, size_t f) -> std::optional<double> {
    if (!r.value[0] || !r.value[f]) return std::nullopt;
    return *r.value[f] - *r.value[0];
  };
  auto policy_label = [](const Key& k) {
    return k.occurrence ? fmt::format("{} (#{})", k.policy, k.occurrence + 1) : k.policy;
  };
  // Config keys whose values differ between the reports.
  std::vector<std::vector<std::pair<std::string, std::string>>> configs;
  for (const auto& r : readers) configs.push_back(config_of(*r));
  std::vector<std::string> config_keys;
  for (const auto& c : configs) {
    for (const auto& [key, value] : c) {
      if (std::find(config_keys.begin(), config_keys.end(), key) == config_keys.end()) config_keys.push_back(key);
    }
  }
  auto config_value = [&](size_t f, const std::string& key) -> std::optional<std::string> {
    for (const auto& [k, v] : configs[f]) {
      if (k == key) return v;
    }
    return std::nullopt;
  };
  std::vector<std::string> differing;
  for (const std::string& key : config_keys) {
    for (size_t f = 1; f < nf; ++f) {
      if (config_value(f, key) != config_value(0, key)) {
        differing.push_back(key);
        break;
      }
    }
  }

  if (opt.format == "text" || opt.format == "markdown") {
    const bool md = opt.format == "markdown";
    std::vector<TextColumn> cols;
    cols.push_back({"policy", false, {}});
    cols.push_back({"index", false, {}});
    cols.push_back({"column", false, {}});
    cols.push_back({"unit", false, {}});
    for (size_t f = 0; f < nf; ++f) cols.push_back({labels[f], true, {}});
    for (size_t f = 1; f < nf; ++f) cols.push_back({fmt::format("{} − {}", labels[f], labels[0]), true, {}});
    for (size_t f = 1; f < nf; ++f) {
      cols.push_back({nf > 2 ? fmt::format("95% CI overlap {}", labels[f]) : std::string("95% CI overlap"), false, {}});
    }
    for (const CompareRow& r : rows) {
      std::vector<double> all;
      for (size_t f = 0; f < nf; ++f) {
        if (r.value[f]) all.push_back(*r.value[f]);
      }
      const report::ShownUnit unit = report::shown_unit(r.column, all);
      auto shown = [&](const std::optional<double>& v) { return v ? report::format_shown(*v, unit) : std::string(); };
      size_t j = 0;
      cols[j++].cells.push_back(policy_label(r.key));
      cols[j++].cells.push_back(r.key.index);
      cols[j++].cells.push_back(r.column);
      cols[j++].cells.push_back(unit.unit);
      for (size_t f = 0; f < nf; ++f) {
        std::string cell = shown(r.value[f]);
        if (r.value[f] && r.lo[f] && r.hi[f]) cell += fmt::format(" [{}, {}]", shown(r.lo[f]), shown(r.hi[f]));
        cols[j++].cells.push_back(cell);
      }
      for (size_t f = 1; f < nf; ++f) {
        const std::optional<double> d = diff(r, f);
        std::string cell = shown(d);
        if (d && *d > 0) cell = "+" + cell;
        cols[j++].cells.push_back(cell);
      }
      for (size_t f = 1; f < nf; ++f) {
        const std::optional<bool> o = overlap(r, f);
        cols[j++].cells.push_back(o ? (*o ? "yes" : "no") : "");
      }
    }
    std::string out = fmt::format("## {} of {} reports: {}\n", name, nf, join(labels, ", "));
    out += md ? report::render_markdown(cols) : report::render_text(cols);
    out += "\n## config keys that differ\n";
    if (differing.empty()) {
      out += "none\n";
    } else {
      std::vector<TextColumn> cc;
      cc.push_back({"key", false, {}});
      for (size_t f = 0; f < nf; ++f) cc.push_back({labels[f], false, {}});
      for (const std::string& key : differing) {
        cc[0].cells.push_back(key);
        for (size_t f = 0; f < nf; ++f) cc[f + 1].cells.push_back(config_value(f, key).value_or("(absent)"));
      }
      out += md ? report::render_markdown(cc) : report::render_text(cc);
    }
    put(out);
    return 0;
  }

  auto num = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  auto row_object = [&](const CompareRow& r) {
    json o = {{"policy", r.key.policy}, {"index", r.key.index}, {"occurrence", r.key.occurrence + 1}, {"column", r.column}};
    json values = json::object(), lo = json::object(), hi = json::object(), diffs = json::object(), over = json::object();
    for (size_t f = 0; f < nf; ++f) {
      values[labels[f]] = num(r.value[f]);
      lo[labels[f]] = num(r.lo[f]);
      hi[labels[f]] = num(r.hi[f]);
    }
    for (size_t f = 1; f < nf; ++f) {
      diffs[labels[f]] = num(diff(r, f));
      const std::optional<bool> ov = overlap(r, f);
      over[labels[f]] = ov ? json(*ov) : json(nullptr);
    }
    o["values"] = values;
    o["lo"] = lo;
    o["hi"] = hi;
    o["diff"] = diffs;
    o["ci_overlap"] = over;
    return o;
  };
  auto config_object = [&](const std::string& key) {
    json values = json::object();
    for (size_t f = 0; f < nf; ++f) {
      const std::optional<std::string> v = config_value(f, key);
      values[labels[f]] = v ? json::parse(*v) : json(nullptr);
    }
    return json{{"config_key", key}, {"values", values}};
  };

  if (opt.format == "csv") {
    // The rows only; the config differences are in the other formats.
    std::vector<std::string> header = {"policy", "index", "occurrence", "column"};
    for (size_t f = 0; f < nf; ++f) {
      header.push_back(labels[f]);
      header.push_back(labels[f] + "_lo");
      header.push_back(labels[f] + "_hi");
    }
    for (size_t f = 1; f < nf; ++f) header.push_back("diff_" + labels[f]);
    for (size_t f = 1; f < nf; ++f) header.push_back("ci_overlap_" + labels[f]);
    std::string out = report::csv_line(header);
    auto cell = [](const std::optional<double>& v) { return v ? report::exact_number(*v) : std::string(); };
    for (const CompareRow& r : rows) {
      std::vector<std::string> line = {r.key.policy, r.key.index, std::to_string(r.key.occurrence + 1), r.column};
      for (size_t f = 0; f < nf; ++f) {
        line.push_back(cell(r.value[f]));
        line.push_back(cell(r.lo[f]));
        line.push_back(cell(r.hi[f]));
      }
      for (size_t f = 1; f < nf; ++f) line.push_back(cell(diff(r, f)));
      for (size_t f = 1; f < nf; ++f) {
        const std::optional<bool> o = overlap(r, f);
        line.push_back(o ? (*o ? "yes" : "no") : "");
      }
      out += report::csv_line(line);
    }
    put(out);
    return 0;
  }
  if (opt.format == "jsonl") {
    std::string out;
    for (const CompareRow& r : rows) out += dump(row_object(r), -1) + "\n";
    for (const std::string& key : differing) out += dump(config_object(key), -1) + "\n";
    put(out);
    return 0;
  }
  json out = {{"table", name}, {"reports", json::array()}, {"labels", labels}, {"rows", json::array()},
              {"config_differences", json::array()}};
  for (const auto& r : readers) out["reports"].push_back(r->path());
  for (const CompareRow& r : rows) out["rows"].push_back(row_object(r));
  for (const std::string& key : differing) out["config_differences"].push_back(config_object(key));
  put(dump(out, 2) + "\n");
  return 0;
}

// ---------------------------------------------------------------- export

struct ExportOptions {
  std::string file;
  std::string dir;
};

void write_text_file(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  SEMSKIP_THROW_IF_NOT_MSG(f.good(), "cannot write '{}'", path.string());
  f << text;
  f.close();
  SEMSKIP_THROW_IF_NOT_MSG(f.good(), "cannot write '{}'", path.string());
}

int run_export(const ExportOptions& opt) {
  std::unique_ptr<ReportReader> r = open_semskip_report(opt.file);
  const fs::path dir(opt.dir);
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    SEMSKIP_THROW_IF_NOT_MSG(fs::is_directory(dir, ec), "'{}' exists and is not a directory", opt.dir);
  } else {
    fs::create_directories(dir, ec);
    SEMSKIP_THROW_IF_NOT_MSG(!ec, "cannot create directory '{}': {}", opt.dir, ec.message());
  }
  // Attributes of the root and of every object, exact values.
  std::string attrs = report::csv_line({"object", "name", "type", "value"});
  auto add_attrs = [&](const std::string& object) {
    for (const auto& [name, value] : r->attrs(object)) {
      const std::string text = std::holds_alternative<double>(value) ? report::exact_number(std::get<double>(value))
                                                                     : report::attr_to_string(value);
      attrs += report::csv_line({object, name, attr_type(value), text});
    }
  };
  add_attrs("/");
  for (const ObjectInfo& o : r->list()) add_attrs(o.path);
  std::vector<std::string> written;
  for (const ObjectInfo& o : report_datasets(*r)) {
    if (o.kind != ObjectKind::table) {
      std::printf("left out %s (an array, not a table)\n", o.path.c_str());
      continue;
    }
    std::string file = o.path.substr(1);
    std::replace(file.begin(), file.end(), '/', '_');
    file += ".csv";
    const Table t = r->read_table(o.path);
    std::vector<std::string> header;
    for (const Column& c : t.columns()) header.push_back(c.name);
    std::string text = report::csv_line(header);
    for (size_t i = 0; i < t.n_rows(); ++i) {
      std::vector<std::string> row;
      for (const Column& c : t.columns()) row.push_back(report::exact_cell(c, i));
      text += report::csv_line(row);
    }
    write_text_file(dir / file, text);
    written.push_back((dir / file).string());
  }
  write_text_file(dir / "attributes.csv", attrs);
  written.push_back((dir / "attributes.csv").string());
  for (const std::string& w : written) std::printf("wrote %s\n", w.c_str());
  return 0;
}

}  // namespace

void add_report_show_verbs(CLI::App& report, CommandRegistry& verbs) {
  auto show = std::make_shared<ShowOptions>();
  CLI::App* s = verbs.add(report, "show",
                          "Tables in the terminal (units in the headers: %, ms/s, GFLOP/TFLOP) or as csv, json, jsonl "
                          "with the stored values",
                          [show] { return run_show(*show); });
  s->add_option("files", show->files, "Report files (.h5)")->required();
  s->add_option("--table", show->tables, "Only this table or array (repeatable)")->allow_extra_args(false);
  s->add_option("--columns", show->columns, "Only these columns, in this order (comma-separated)");
  s->add_option("--format", show->format, "text | markdown | csv | json | jsonl")
      ->check(CLI::IsMember(kFormats))
      ->capture_default_str();

  auto cmp = std::make_shared<CompareOptions>();
  CLI::App* c = verbs.add(report, "compare",
                          "Configurations (policy, index) of several reports side by side: values, differences to "
                          "the first report, whether the 95% intervals overlap, config keys that differ",
                          [cmp] { return run_compare(*cmp); });
  c->add_option("files", cmp->files, "Two or more report files (.h5); differences are to the first")->required();
  c->add_option("--table", cmp->table, "Table to compare")->capture_default_str();
  c->add_option("--format", cmp->format, "text | markdown | csv | json | jsonl")
      ->check(CLI::IsMember(kFormats))
      ->capture_default_str();

  auto exp = std::make_shared<ExportOptions>();
  CLI::App* e = verbs.add(report, "export", "Every table of a report as DIR/<table>.csv, attributes in DIR/attributes.csv",
                          [exp] { return run_export(*exp); });
  e->add_option("file", exp->file, "Report file (.h5)")->required();
  e->add_option("--csv", exp->dir, "Directory to write (created if absent)")->required();
}

}  // namespace semskip
