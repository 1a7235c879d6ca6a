#pragma once
// The tables of a `semskip serve-bench` report (reports/SCHEMA.md, section serve-bench): one
// row per (policy, request) in /requests with its times, lengths, pre-emptions, skips and
// agreement with policy none, and one row per (policy, rank, step) in /steps with the batch
// composition, per layer the rows that skipped the block or the MLP, and the step's time.
// Plain records in, plain tables out: no Torch here (docs/architecture.md §2).

#include <cstdint>
#include <string>
#include <vector>

#include "reports/table.h"
#include "serve/records.h"

namespace semskip::report {

class ReportWriter;

// One policy's records of a serving run, merged over ranks.
struct ServePolicyRecords {
  std::string policy;                              // descriptor
  std::vector<serve::RequestRecord> requests;      // any order
  std::vector<int64_t> request_rank;               // [requests]: the rank that served it
  std::vector<serve::StepRecord> steps;
  std::vector<int64_t> step_rank;                  // [steps]: the rank that took it
  // [requests]: against policy none's output for the same request (-1: not compared).
  std::vector<int64_t> exact_match;
  std::vector<int64_t> matched_prefix;
};

// n_layer: the model's layers (every step's rows_skipping has this size or is empty, then
// counted as zeros); semskip::Error naming the policy and step otherwise, or when a per-request
// list's size differs from the requests'.
Table serve_requests_table(const std::vector<ServePolicyRecords>& runs);
Table serve_steps_table(const std::vector<ServePolicyRecords>& runs, int64_t n_layer);

// Writes /requests and /steps.
void write_serve_tables(ReportWriter& writer, const std::vector<ServePolicyRecords>& runs, int64_t n_layer);

}  // namespace semskip::report
