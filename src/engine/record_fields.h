#pragma once
// The field tables of the records of a `semskip run` report (reports/field_table.h): one per
// record type, in column order. Each drives the gather of its record over ranks (run_gather),
// the HDF5 columns of its table (run_summary) and the Markdown of reports/SCHEMA.md
// (schema_markdown_tables), so the three cannot disagree.
//
//   /summary    configuration + summary_fields()   (PolicySummary; policy, index are its own)
//   /per_layer  configuration_fields() + layer_fields()
//   /per_rank   configuration_fields() + rank_fields()
//   /requests   configuration_fields() + request_fields()
//   /steps      configuration_fields() + step_fields()

#include <string>
#include <utility>
#include <vector>

#include "engine/evaluator.h"
#include "engine/run_gather.h"
#include "engine/run_summary.h"
#include "reports/field_table.h"

namespace semskip {

// `policy`, `index`: the configuration a row belongs to (the first columns of the tables
// above other than /summary).
const report::FieldTable<GatheredResult>& configuration_fields();
const report::FieldTable<PolicySummary>& summary_fields();
const report::FieldTable<LayerRecord>& layer_fields();
const report::FieldTable<RankRecord>& rank_fields();
const report::FieldTable<RequestRecord>& request_fields();
const report::FieldTable<StepRecord>& step_fields();

// The documented columns of a report table: {table path, Markdown table}, for every table whose
// columns reports/SCHEMA.md lists between `<!-- fields <path> begin -->` and
// `<!-- fields <path> end -->` (the run tables above and /index/bench, /index/bench_samples).
std::vector<std::pair<std::string, std::string>> schema_markdown_tables();

// `doc` (the text of reports/SCHEMA.md) with every marked block replaced by its rendering;
// semskip::Error naming the table when a block's markers are missing.
std::string render_schema_doc(const std::string& doc);

}  // namespace semskip
