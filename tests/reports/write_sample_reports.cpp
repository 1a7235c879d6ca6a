// Writes the reports that the CLI, h5py and plotting tests read (tests/reports/CMakeLists.txt):
//   sample_a.h5       a one-rank run: /summary with confidence intervals, /per_layer,
//                     /index/build with a table attribute, an array
//   sample_b.h5       a two-rank run whose /summary has a column sample_a.h5 lacks and lacks
//                     the interval columns
//   not_a_report.h5   an HDF5 file with a table but without the schema_version attribute
// Every value is fixed, so the tests can assert exact values and exact output.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "reports/report_writer.h"
#include "reports/run_info.h"

using namespace semskip::report;

namespace {

RunInfo fixed_info(int64_t world_size) {
  RunInfo info;
  info.semskip_version = "0.1.0";
  info.git_revision = "0123456789ab";
  info.created_utc = "2024-05-01T12:34:56Z";
  info.command_line = "semskip run --policy none --policy 'static:layers=5+7'";
  info.config_json = R"({"chunk":128,"model":"tiny-dense"})";
  info.world_size = world_size;
  for (int64_t r = 0; r < world_size; ++r) info.hosts.push_back("node" + std::to_string(r / 2 + 1));
  info.slurm_job_id = world_size > 1 ? "4242" : "";
  return info;
}

void write_a(const std::string& path) {
  ReportWriter w(path);
  write_run_info(w, fixed_info(1));
  Table summary;
  summary.add("policy", std::vector<std::string>{"none", "static:layers=5+7", "residual:p=2,r=7,tau=0.95"})
      .add("hit_rate", std::vector<double>{0.0, 0.0, 0.41})
      .add("flops_saved_net", std::vector<double>{0.0, 0.176, -0.25})
      .add("top1_agreement", std::vector<double>{1.0, 0.62, 0.77})
      .add("top1_agreement_lo", std::vector<double>{1.0, 0.6, 0.75})
      .add("top1_agreement_hi", std::vector<double>{1.0, 0.64, 0.79})
      .add("n_tokens", std::vector<int64_t>{4096, 4096, 4096});
  w.write_table("/summary", summary);
  Table per_layer;
  per_layer.add("layer", std::vector<int64_t>{0, 1})
      .add("executed_flops", std::vector<int64_t>{123456789012, 98765432109})
      .add("note", std::vector<std::string>{"naïve", "日本"});
  w.write_table("/per_layer", per_layer);
  w.write_table("/index/build", Table().add("t_build_ns", std::vector<int64_t>{1500}).add("qps", std::vector<double>{0.1}));
  w.set_attr("descriptor", std::string("faiss:Flat"), "/index/build");
  w.write_array("/hit_histogram", {1.0, 2.5, 3.0, 4.0, 5.0, 6.5}, {2, 3});
  w.commit();
}

void write_b(const std::string& path) {
  ReportWriter w(path);
  write_run_info(w, fixed_info(2));
  Table summary;
  summary.add("policy", std::vector<std::string>{"none", "residual:p=2,r=7,tau=0.95"})
      .add("hit_rate", std::vector<double>{0.0, 0.4})
      .add("flops_saved_net", std::vector<double>{0.0, -0.2})
      .add("top1_agreement", std::vector<double>{1.0, 0.78})
      .add("t_total_ns", std::vector<int64_t>{2000000, 1500000});
  w.write_table("/summary", summary);
  w.commit();
}

void write_plain(const std::string& path) {
  ReportWriter w(path);
  w.write_table("/summary", Table().add("x", std::vector<int64_t>{1}));
  w.commit();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    std::filesystem::create_directories(dir);
    write_a(dir + "/sample_a.h5");
    write_b(dir + "/sample_b.h5");
    write_plain(dir + "/not_a_report.h5");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_sample_reports: %s\n", e.what());
    return 1;
  }
  return 0;
}
