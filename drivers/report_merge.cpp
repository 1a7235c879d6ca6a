// semskip report merge | scaling: many reports of one experiment into one (the tasks of a
// SLURM job array, the shards of a run), and the scaling table of runs at several sizes
// (reports/report_merge.h, reports/report_scaling.h).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "drivers/report_verbs.h"
#include "reports/report_merge.h"
#include "reports/report_scaling.h"
#include "reports/report_writer.h"
#include "reports/run_info.h"
#include "reports/table_text.h"

namespace semskip {

namespace {

using json = nlohmann::json;

struct ScalingOptions {
  std::vector<std::string> files;
  std::string mode;
  std::string by = "auto";
  std::vector<std::string> vary;
  std::string report;
  std::string format = "text";
  bool force = false;
};

int run_merge(const report::MergeOptions& opt) {
  for (const std::string& f : opt.inputs) (void)open_semskip_report(f);
  report::merge_reports(opt);
  std::fprintf(stderr, "semskip report merge: %zu reports merged into %s\n", opt.inputs.size(), opt.output.c_str());
  return 0;
}

void print_scaling(const report::Table& t, const std::string& format) {
  if (format == "json") {
    json rows = json::array();
    for (size_t i = 0; i < t.n_rows(); ++i) {
      json row = json::object();
      for (const report::Column& c : t.columns()) {
        std::visit([&](const auto& v) { row[c.name] = v[i]; }, c.data);
      }
      rows.push_back(row);
    }
    std::fputs((rows.dump(2) + "\n").c_str(), stdout);
    return;
  }
  if (format == "csv") {
    std::vector<std::string> header;
    for (const report::Column& c : t.columns()) header.push_back(c.name);
    std::string out = report::csv_line(header);
    for (size_t i = 0; i < t.n_rows(); ++i) {
      std::vector<std::string> cells;
      for (const report::Column& c : t.columns()) cells.push_back(report::exact_cell(c, i));
      out += report::csv_line(cells);
    }
    std::fputs(out.c_str(), stdout);
    return;
  }
  std::vector<report::TextColumn> cols;
  for (const report::Column& c : t.columns()) cols.push_back(report::to_shown_column(c));
  std::fputs(report::render_text(cols).c_str(), stdout);
}

int run_scaling(const ScalingOptions& opt) {
  std::vector<std::unique_ptr<report::ReportReader>> owned;
  std::vector<const report::ReportReader*> readers;
  for (const std::string& f : opt.files) {
    owned.push_back(open_semskip_report(f));
    readers.push_back(owned.back().get());
  }
  if (!opt.report.empty()) report::check_report_path(opt.report, opt.force);
  const report::ScalingMode mode = report::parse_scaling_mode(opt.mode);
  const report::ScalingUnit unit = opt.by == "auto"    ? report::default_scaling_unit(readers)
                                   : opt.by == "nodes" ? report::ScalingUnit::nodes
                                                       : report::ScalingUnit::ranks;
  const report::Table table = report::scaling_table(readers, mode, unit, opt.vary);
  if (opt.format == "text")
    std::printf("## %s scaling by %s, against %lld %s\n", report::scaling_mode_name(mode),
                report::scaling_unit_name(unit),
                static_cast<long long>(std::get<std::vector<int64_t>>(table.find("size")->data).front()),
                report::scaling_unit_name(unit));
  print_scaling(table, opt.format);
  if (opt.report.empty()) return 0;
  report::RunInfo info = report::read_run_info(*readers[0]);
  const report::RunInfo here = report::collect_run_info();
  info.created_utc = here.created_utc;
  info.command_line = here.command_line;
  report::ReportWriter writer(std::filesystem::absolute(opt.report).string());
  report::write_run_info(writer, info);
  writer.set_attr("command", std::string("report scaling"));
  writer.set_attr("scaling_mode", std::string(report::scaling_mode_name(mode)));
  writer.set_attr("scaling_unit", std::string(report::scaling_unit_name(unit)));
  writer.write_table("/scaling", table);
  writer.write_table("/sources", report::sources_table(readers));
  writer.commit();
  std::fprintf(stderr, "semskip report scaling: table written to %s\n", opt.report.c_str());
  return 0;
}

}  // namespace

void add_report_merge_verbs(CLI::App& report, CommandRegistry& verbs) {
  auto merge = std::make_shared<report::MergeOptions>();
  CLI::App* m = verbs.add(report, "merge",
                          "Many reports of one experiment (job-array tasks, shards, sweep points) into one: every "
                          "table's rows with a 'source' column, each source's provenance in /sources; refuses "
                          "sources of other builds or configurations",
                          [merge] { return run_merge(*merge); });
  m->add_option("output", merge->output, "The merged report to write (.h5)")->required();
  m->add_option("inputs", merge->inputs, "Two or more complete reports")->required();
  m->add_option("--vary", merge->vary,
                "A configuration key the sources may differ in (repeatable; e.g. policies, indexes, model); "
                "report, json and shard_index always may")
      ->allow_extra_args(false);
  m->add_flag("--force", merge->force, "Replace an existing output report");

  auto sc = std::make_shared<ScalingOptions>();
  CLI::App* s = verbs.add(report, "scaling",
                          "Scaling table of one experiment at several sizes: strong (speed-up and efficiency "
                          "against the smallest run) or weak (efficiency per size), per configuration",
                          [sc] { return run_scaling(*sc); });
  s->add_option("files", sc->files, "Reports of `semskip run`, one per size")->required();
  s->add_option("--mode", sc->mode, "strong (same requests at every size) | weak (same requests per rank)")
      ->required()
      ->check(CLI::IsMember({"strong", "weak"}));
  s->add_option("--by", sc->by, "Size in nodes (distinct hosts) or ranks; auto: nodes where they differ")
      ->check(CLI::IsMember({"auto", "nodes", "ranks"}))
      ->capture_default_str();
  s->add_option("--vary", sc->vary, "A configuration key the runs may differ in (repeatable)")->allow_extra_args(false);
  s->add_option("--report", sc->report, "Also write the table as /scaling of this report (.h5)");
  s->add_flag("--force", sc->force, "Replace an existing --report");
  s->add_option("--format", sc->format, "text | csv | json")
      ->check(CLI::IsMember({"text", "csv", "json"}))
      ->capture_default_str();
}

}  // namespace semskip
