#pragma once
// The verbs of `semskip report` (show, compare, export, plot, merge, scaling) beside its original form
// (`semskip report a.h5 [--table T] [--json] [--compare]`, drivers/cmd_report.cpp).

#include <memory>
#include <utility>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/command.h"
#include "reports/report_reader.h"

namespace semskip {

// Opens `path` and refuses what is not a semskip report, before anything is printed.
std::unique_ptr<report::ReportReader> open_semskip_report(const std::string& path);
// "/x" for "x" and "/x".
std::string report_object_name(const std::string& name);
// Every table and array of the report (not groups), in creation order.
std::vector<report::ObjectInfo> report_datasets(const report::ReportReader& r);
// The datasets named (each must exist; the error lists what the report has); all when empty.
std::vector<report::ObjectInfo> report_selected(const report::ReportReader& r, const std::vector<std::string>& names);

// Attributes as one JSON object, values in their stored types, in stored order.
nlohmann::ordered_json report_attrs_json(const std::vector<std::pair<std::string, report::AttrValue>>& attrs);

// Declares show, compare and export on `report` (report_show.cpp) and plot (report_plot.cpp);
// their run functions go to `verbs`.
void add_report_show_verbs(CLI::App& report, CommandRegistry& verbs);
void add_report_plot_verb(CLI::App& report, CommandRegistry& verbs);
// merge and scaling (report_merge.cpp).
void add_report_merge_verbs(CLI::App& report, CommandRegistry& verbs);

}  // namespace semskip
