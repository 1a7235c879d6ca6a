// The /requests and /steps tables of a serve-bench report: the columns of reports/SCHEMA.md,
// values taken from the records, per-layer columns, and an HDF5 round trip.
#include <gtest/gtest.h>

#include "core/error.h"
#include "reports/report_reader.h"
#include "reports/report_writer.h"
#include "reports/serve_report.h"
#include "tests/reports/scratch_dir.h"

namespace semskip::report {
namespace {

ServePolicyRecords two_requests() {
  ServePolicyRecords p;
  p.policy = "static:layers=1";
  serve::RequestRecord a;
  a.id = 4;
  a.n_prompt_tokens = 7;
  a.arrival_s = 0.25;
  a.scheduled_s = 0.5;
  a.first_token_s = 0.75;
  a.finish_s = 1.5;
  a.token_times_s = {0.75, 1.0, 1.5};
  a.output_tokens = {1, 2, 3};
  a.n_preemptions = 1;
  a.n_prompt_tokens_skipped = 7;
  a.n_output_tokens_skipped = 2;
  a.finish_reason = "length";
  serve::RequestRecord b;
  b.id = 9;
  b.n_prompt_tokens = 0;
  b.finish_reason = "error";
  b.error = "empty prompt";
  p.requests = {a, b};
  p.request_rank = {1, 0};
  p.exact_match = {0, -1};
  p.matched_prefix = {2, -1};
  serve::StepRecord s0;
  s0.index = 0;
  s0.start_s = 0.5;
  s0.duration_s = 0.25;
  s0.n_seqs = 1;
  s0.n_prefill_tokens = 7;
  s0.rows_skipping = {0, 7, 0};
  s0.rows_mlp_skipping = {0, 0, 1};
  s0.t_schedule_s = 0.01;
  s0.t_prepare_s = 0.02;
  s0.t_forward_s = 0.2;
  s0.t_finish_s = 0.02;
  serve::StepRecord s1;  // an empty lockstep step: no per-layer counts
  s1.index = 1;
  s1.start_s = 0.75;
  p.steps = {s0, s1};
  p.step_rank = {1, 1};
  return p;
}

TEST(BenchServeReport, RequestsTableHoldsTheRecords) {
  const Table t = serve_requests_table({two_requests()});
  ASSERT_EQ(t.n_rows(), 2u);
  const auto& ttft = std::get<std::vector<double>>(t.find("ttft_s")->data);
  EXPECT_DOUBLE_EQ(ttft[0], 0.5);   // 0.75 − 0.25
  EXPECT_DOUBLE_EQ(ttft[1], -1.0);  // not completed
  EXPECT_DOUBLE_EQ(std::get<std::vector<double>>(t.find("e2el_s")->data)[0], 1.25);
  EXPECT_EQ(std::get<std::vector<int64_t>>(t.find("n_tokens_output")->data), (std::vector<int64_t>{3, 0}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(t.find("rank")->data), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(std::get<std::vector<std::string>>(t.find("error")->data)[1], "empty prompt");
  EXPECT_EQ(std::get<std::vector<int64_t>>(t.find("gen_matched_prefix")->data)[0], 2);
  ServePolicyRecords bad = two_requests();
  bad.exact_match.pop_back();
  EXPECT_THROW(serve_requests_table({bad}), Error);
}

TEST(BenchServeReport, StepsTableHasOneColumnPerLayer) {
  const Table t = serve_steps_table({two_requests()}, 3);
  ASSERT_EQ(t.n_rows(), 2u);
  EXPECT_EQ(std::get<std::vector<int64_t>>(t.find("n_block_skips")->data), (std::vector<int64_t>{7, 0}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(t.find("n_mlp_skips")->data), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(t.find("n_block_skips_l1")->data), (std::vector<int64_t>{7, 0}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(t.find("n_mlp_skips_l2")->data), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(t.find("n_block_skips_l3"), nullptr);
  EXPECT_EQ(std::get<std::vector<double>>(t.find("t_forward_s")->data), (std::vector<double>{0.2, 0.0}));
  EXPECT_EQ(std::get<std::vector<double>>(t.find("t_prepare_s")->data), (std::vector<double>{0.02, 0.0}));
  EXPECT_THROW(serve_steps_table({two_requests()}, 4), Error);  // 3 counts for 4 layers
}

TEST(BenchServeReport, HdfRoundTrip) {
  test::ScratchDir dir;
  const std::string path = (dir.path() / "serve.h5").string();
  {
    ReportWriter w(path);
    write_serve_tables(w, {two_requests(), two_requests()}, 3);
    w.commit();
  }
  ReportReader r(path);
  const Table req = r.read_table("/requests");
  EXPECT_EQ(req.n_rows(), 4u);
  EXPECT_EQ(std::get<std::vector<int64_t>>(req.find("request_id")->data), (std::vector<int64_t>{4, 9, 4, 9}));
  const Table steps = r.read_table("/steps");
  EXPECT_EQ(steps.n_rows(), 4u);
  EXPECT_EQ(std::get<std::vector<double>>(steps.find("duration_s")->data)[0], 0.25);
}

}  // namespace
}  // namespace semskip::report
