// semskip report: print HDF5 reports (root attributes, tables) as text or JSON, or put the
// /summary tables of several runs one under another to compare them.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "drivers/command.h"
#include "drivers/report_verbs.h"
#include "reports/report_reader.h"
#include "reports/run_info.h"
#include "reports/table_text.h"

namespace semskip {

namespace {

// Ordered: columns and attributes keep the order in which the report stores them.
using json = nlohmann::ordered_json;
using report::ObjectInfo;
using report::ObjectKind;
using report::ReportReader;

constexpr const char* kDefaultCompareTable = "/summary";

struct ReportOptions {
  std::vector<std::string> files;
  std::vector<std::string> tables;  // empty: every table
  bool json = false;
  bool compare = false;
};

std::string absolute_name(const std::string& name) { return report_object_name(name); }

std::unique_ptr<ReportReader> open_report(const std::string& path) { return open_semskip_report(path); }

std::vector<ObjectInfo> selected(const ReportReader& r, const std::vector<std::string>& names) {
  return report_selected(r, names);
}

std::string attrs_text(const std::vector<std::pair<std::string, report::AttrValue>>& attrs) {
  report::TextColumn names{"attribute", false, {}};
  report::TextColumn values{"value", false, {}};
  for (const auto& [name, value] : attrs) {
    names.cells.push_back(name);
    values.cells.push_back(report::attr_to_string(value));
  }
  return report::render_text({names, values});
}

std::string rows_word(int64_t n) { return n == 1 ? "1 row" : fmt::format("{} rows", n); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::vector<std::string> dims;
  for (int64_t d : shape) dims.push_back(std::to_string(d));
  return "[" + join(dims, ", ") + "]";
}

void print_text(const ReportReader& r, const ReportOptions& opt) {
  std::string out = fmt::format("# {}\n", r.path());
  if (opt.tables.empty()) out += "\n" + attrs_text(r.attrs());
  for (const ObjectInfo& o : selected(r, opt.tables)) {
    if (o.kind == ObjectKind::array) {
      out += fmt::format("\n## {}: float64 array {}\n", o.path, shape_text(o.shape));
      continue;
    }
    out += fmt::format("\n## {} ({})\n", o.path, rows_word(o.shape.at(0)));
    auto attrs = r.attrs(o.path);
    if (!attrs.empty()) out += attrs_text(attrs) + "\n";
    out += report::format_table_text(r.read_table(o.path));
  }
  std::fputs(out.c_str(), stdout);
}

json attrs_json(const std::vector<std::pair<std::string, report::AttrValue>>& attrs) {
  return report_attrs_json(attrs);
}

json column_json(const report::Column& c) {
  return std::visit([](const auto& v) { return json(v); }, c.data);
}

json file_json(const ReportReader& r, const ReportOptions& opt) {
  json tables = json::object();
  json arrays = json::object();
  for (const ObjectInfo& o : selected(r, opt.tables)) {
    if (o.kind == ObjectKind::array) {
      report::Array a = r.read_array(o.path);
      arrays[o.path] = {{"attributes", attrs_json(r.attrs(o.path))}, {"shape", a.shape}, {"values", a.values}};
      continue;
    }
    json columns = json::object();
    const report::Table table = r.read_table(o.path);
    for (const report::Column& c : table.columns()) columns[c.name] = column_json(c);
    tables[o.path] = {{"attributes", attrs_json(r.attrs(o.path))}, {"n_rows", o.shape.at(0)}, {"columns", columns}};
  }
  json out = {{"file", r.path()}};
  if (opt.tables.empty()) out["attributes"] = attrs_json(r.attrs());
  out["tables"] = std::move(tables);
  out["arrays"] = std::move(arrays);
  return out;
}

// One table made of the same-named table of every report: a leading `file` column, the union
// of the columns in order of first appearance, blank (text) or null (JSON) where a report
// lacks a column.
void print_compare(const std::vector<std::unique_ptr<ReportReader>>& readers, const ReportOptions& opt) {
  SEMSKIP_THROW_IF_NOT_MSG(opt.tables.size() <= 1, "--compare takes at most one --table, got {}",
                           opt.tables.size());
  const std::string name = opt.tables.empty() ? kDefaultCompareTable : absolute_name(opt.tables[0]);
  std::vector<report::Table> tables;
  std::vector<std::string> order;
  for (const auto& r : readers) {
    SEMSKIP_THROW_IF_NOT_MSG(r->has(name), "report '{}' has no table '{}' to compare", r->path(), name);
    tables.push_back(r->read_table(name));
    for (const report::Column& c : tables.back().columns()) {
      if (std::find(order.begin(), order.end(), c.name) == order.end()) order.push_back(c.name);
    }
  }
  std::vector<report::TextColumn> text(order.size() + 1);
  json columns = json::object();
  text[0].name = "file";
  columns["file"] = json::array();
  for (size_t j = 0; j < order.size(); ++j) {
    text[j + 1].name = order[j];
    columns[order[j]] = json::array();
  }
  for (size_t f = 0; f < tables.size(); ++f) {
    const size_t n = tables[f].n_rows();
    for (size_t i = 0; i < n; ++i) {
      text[0].cells.push_back(readers[f]->path());
      columns["file"].push_back(readers[f]->path());
    }
    for (size_t j = 0; j < order.size(); ++j) {
      const report::Column* c = tables[f].find(order[j]);
      if (!c) {
        text[j + 1].cells.insert(text[j + 1].cells.end(), n, std::string());
        for (size_t i = 0; i < n; ++i) columns[order[j]].push_back(nullptr);
        continue;
      }
      report::TextColumn t = report::to_text_column(*c);
      text[j + 1].right_align = text[j + 1].right_align || t.right_align;
      text[j + 1].cells.insert(text[j + 1].cells.end(), t.cells.begin(), t.cells.end());
      for (const json& v : column_json(*c)) columns[order[j]].push_back(v);
    }
  }
  if (opt.json) {
    std::fputs((json{{"table", name}, {"columns", columns}}.dump(2, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
    return;
  }
  std::string out = fmt::format("## {} of {} reports\n", name, readers.size());
  out += report::render_text(text);
  std::fputs(out.c_str(), stdout);
}

int run_report(const ReportOptions& opt) {
  std::vector<std::unique_ptr<ReportReader>> readers;
  for (const std::string& f : opt.files) readers.push_back(open_report(f));
  if (opt.compare) {
    print_compare(readers, opt);
    return 0;
  }
  // Every named table must exist in every file before anything is printed.
  for (const auto& r : readers) (void)selected(*r, opt.tables);
  if (opt.json) {
    json all = json::array();
    for (const auto& r : readers) all.push_back(file_json(*r, opt));
    std::fputs((all.dump(2, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
    return 0;
  }
  for (size_t i = 0; i < readers.size(); ++i) {
    if (i) std::fputs("\n", stdout);
    print_text(*readers[i], opt);
  }
  return 0;
}

}  // namespace

std::string report_object_name(const std::string& name) { return starts_with(name, "/") ? name : "/" + name; }

std::unique_ptr<ReportReader> open_semskip_report(const std::string& path) {
  auto reader = std::make_unique<ReportReader>(path);
  SEMSKIP_THROW_IF_NOT_MSG(reader->has_attr(report::kSchemaVersionAttr),
                           "'{}' is not a semskip report (no root attribute '{}')", path,
                           report::kSchemaVersionAttr);
  return reader;
}

std::vector<ObjectInfo> report_datasets(const ReportReader& r) {
  std::vector<ObjectInfo> out;
  for (ObjectInfo& o : r.list()) {
    if (o.kind != ObjectKind::group) out.push_back(std::move(o));
  }
  return out;
}

std::vector<ObjectInfo> report_selected(const ReportReader& r, const std::vector<std::string>& names) {
  std::vector<ObjectInfo> all = report_datasets(r);
  if (names.empty()) return all;
  std::vector<ObjectInfo> out;
  for (const std::string& name : names) {
    const std::string want = report_object_name(name);
    bool found = false;
    for (const ObjectInfo& o : all) {
      if (o.path == want) {
        out.push_back(o);
        found = true;
      }
    }
    if (!found) {
      std::vector<std::string> have;
      for (const ObjectInfo& o : all) have.push_back(o.path);
      SEMSKIP_THROW_MSG("report '{}' has no table '{}' (it has: {})", r.path(), want,
                        have.empty() ? std::string("nothing") : join(have, ", "));
    }
  }
  return out;
}

void add_report_command(CLI::App& app, CommandRegistry& reg) {
  auto opt = std::make_shared<ReportOptions>();
  // The verbs have their own registry; without one, the original form runs.
  auto verbs = std::make_shared<CommandRegistry>();
  auto self = std::make_shared<CLI::App*>(nullptr);
  CLI::App* sub = reg.add(app, "report",
                          "Print HDF5 reports (root attributes and tables), or compare the /summary of several runs; "
                          "verbs: show, compare, export, plot, merge, scaling",
                          [opt, verbs, self] {
                            if (const CommandFn* fn = verbs->selected(**self)) return (*fn)();
                            SEMSKIP_THROW_IF_NOT_MSG(!opt->files.empty(),
                                                     "no report given (semskip report FILE... or a verb: "
                                                     "show, compare, export, plot, merge, scaling)");
                            return run_report(*opt);
                          });
  *self = sub;
  sub->require_subcommand(0, 1);
  sub->add_option("files", opt->files, "Report files written by semskip (.h5)");
  sub->add_option("--table", opt->tables,
                  "Only this table or array (repeatable; '/index/build' or 'index/build'); with --compare, "
                  "the table to compare instead of /summary")
      ->allow_extra_args(false);  // one name per --table, so a following file name stays a file
  sub->add_flag("--json", opt->json, "JSON instead of text: a list with one object per file, tables by column");
  sub->add_flag("--compare", opt->compare,
                "One table of all files' /summary rows with a leading 'file' column; columns missing in a "
                "file are left blank");
  add_report_show_verbs(*sub, *verbs);
  add_report_plot_verb(*sub, *verbs);
  add_report_merge_verbs(*sub, *verbs);
}

}  // namespace semskip
