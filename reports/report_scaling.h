#pragma once
// Scaling efficiency from a set of reports of one experiment run at several sizes
// (`semskip report scaling`, slurm/scaling.sh). For each configuration (policy, index) of
// /summary, the run at the smallest size is the baseline, and each run gets:
//   strong (the same requests at every size): speedup = t_skip_s(base) / t_skip_s,
//          efficiency = speedup / (size / size(base));
//   weak (the same requests per rank):         speedup = tokens_per_s / tokens_per_s(base),
//          efficiency = t_skip_s(base) / t_skip_s.
// The size is counted in nodes (distinct hosts of the run) or in ranks (world_size).
// Refused, naming the file: configurations that differ in a key not declared to vary (beyond
// the sizes' own: for weak scaling the request count and workload may grow with the size),
// two reports of one size, reports whose configurations (policy, index) differ, and request
// counts that are not those of the mode.

#include <string>
#include <vector>

#include "reports/report_reader.h"
#include "reports/table.h"

namespace semskip::report {

enum class ScalingMode { strong, weak };
enum class ScalingUnit { nodes, ranks };

ScalingMode parse_scaling_mode(const std::string& text);  // "strong" | "weak"
const char* scaling_mode_name(ScalingMode mode);
const char* scaling_unit_name(ScalingUnit unit);

// Distinct hosts of a report's `hosts` attribute.
int64_t report_node_count(const ReportReader& r);

// nodes when the reports' node counts differ, else ranks (one machine emulating several).
ScalingUnit default_scaling_unit(const std::vector<const ReportReader*>& readers);

// The table: one row per (configuration, size), configurations in the first report's order and
// sizes ascending. Columns: policy, index, n_nodes, n_ranks, size, n_requests, n_tokens,
// t_skip_s, tokens_per_s, speedup, efficiency, source (into sources_table's rows).
Table scaling_table(const std::vector<const ReportReader*>& readers, ScalingMode mode, ScalingUnit unit,
                    const std::vector<std::string>& vary);

}  // namespace semskip::report
