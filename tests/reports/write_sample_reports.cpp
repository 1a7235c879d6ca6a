// Writes the reports that the CLI, h5py and plotting tests read (tests/reports/CMakeLists.txt):
//   sample_a.h5       a one-rank run: /summary with confidence intervals, /per_layer,
//                     /index/build with a table attribute, an array
//   sample_b.h5       a two-rank run whose /summary has a column sample_a.h5 lacks and lacks
//                     the interval columns
//   not_a_report.h5   an HDF5 file with a table but without the schema_version attribute
//   run_w1.h5, run_w2.h5  `semskip run` reports laid out as reports/SCHEMA.md says (/summary
//                     with intervals and times, /per_layer with counts), on 1 and 2 ranks, whose
//                     config_json differ in two keys
//   index_bench.h5    an `semskip index-bench` report: /index/bench over backends and sizes
//   no_figures.h5     a report whose one table has nothing that `semskip report plot` draws
// Every value is fixed, so the tests can assert exact values and exact output.
#include <algorithm>
#include <cmath>
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

// One `semskip run` report on `world_size` ranks: the same configurations, faster with more ranks.
void write_run(const std::string& path, int64_t world_size) {
  ReportWriter w(path);
  RunInfo info = fixed_info(world_size);
  info.config_json = world_size == 1 ? R"({"chunk":128,"model":"tiny-dense","cache_mode":"local","batch":1})"
                                     : R"({"chunk":128,"model":"tiny-dense","cache_mode":"sharded","batch":2})";
  write_run_info(w, info);
  const std::vector<std::string> policy = {"none", "static:k=2", "static:k=4", "random:rate=0.1",
                                           "oracle:eps=0.1", "residual:p=2,r=7,tau=0.95", "residual:p=2,r=7,tau=0.9",
                                           "residual:p=2,r=7,tau=0.95", "plan:p=2,beta=0.05,tau=0.95"};
  const std::vector<std::string> index = {"", "", "", "", "", "faiss:Flat", "faiss:Flat", "faiss:HNSW32", "faiss:Flat"};
  const std::vector<double> saved = {0.0, 0.12, 0.24, 0.08, 0.30, 0.15, 0.22, 0.14, 0.10};
  const std::vector<double> top1 = {1.0, 0.81, 0.63, 0.74, 0.97, 0.93, 0.86, 0.92, 0.95};
  const std::vector<double> half = {0.0, 0.02, 0.03, 0.025, 0.01, 0.015, 0.02, 0.015, 0.012};
  const std::vector<double> hit = {0, 0, 0, 0, 0, 0.31, 0.45, 0.29, 0.6};
  const double t_full = world_size == 1 ? 2.0 : 1.1;  // seconds, 8192 tokens
  Table s;
  s.add("policy", policy).add("index", index);
  s.add("n_tokens", std::vector<int64_t>(policy.size(), 8192));
  std::vector<double> skip_rate, lo, hi, t_skip, tps, gross;
  std::vector<int64_t> full, executed, overhead;
  for (size_t i = 0; i < policy.size(); ++i) {
    gross.push_back(saved[i] + (i >= 5 ? 0.03 : 0.0));
    skip_rate.push_back(gross.back() * 1.1);
    lo.push_back(top1[i] - half[i]);
    hi.push_back(std::min(1.0, top1[i] + half[i]));
    full.push_back(1'250'000'000'000);
    executed.push_back(static_cast<int64_t>(1.25e12 * (1 - gross.back())));
    overhead.push_back(static_cast<int64_t>(1.25e12 * (gross.back() - saved[i])));
    t_skip.push_back(t_full * (1 - 0.8 * saved[i]));
    tps.push_back(8192 / t_skip.back());
  }
  s.add("hit_rate", hit).add("skip_rate", skip_rate);
  s.add("flops_full", full).add("flops_executed", executed).add("flops_overhead", overhead);
  s.add("flops_saved_gross", gross).add("flops_saved_net", saved);
  s.add("top1_agreement", top1).add("top1_agreement_lo", lo).add("top1_agreement_hi", hi);
  s.add("t_full_s", std::vector<double>(policy.size(), t_full)).add("t_skip_s", t_skip);
  s.add("tokens_per_s", tps).add("n_ranks", std::vector<int64_t>(policy.size(), world_size));
  w.write_table("/summary", s);
  // /per_layer for three configurations over 8 layers: the full model, static:k=2, one cache.
  Table pl;
  std::vector<std::string> pp, pi;
  std::vector<int64_t> layer, run, skipped, mlp, lookups, hits, lf, le;
  const int64_t per_layer_tokens = 8192;
  for (int c = 0; c < 3; ++c) {
    for (int64_t l = 0; l < 8; ++l) {
      pp.push_back(c == 0 ? "none" : c == 1 ? "static:k=2" : "residual:p=2,r=7,tau=0.95");
      pi.push_back(c == 2 ? "faiss:Flat" : "");
      layer.push_back(l);
      int64_t sk = 0;
      if (c == 1) sk = (l == 5 || l == 6) ? per_layer_tokens : 0;
      if (c == 2) sk = l < 2 ? 0 : per_layer_tokens * (10 + 5 * l) / 100;
      run.push_back(per_layer_tokens - sk);
      skipped.push_back(sk);
      mlp.push_back(0);
      lookups.push_back(c == 2 && l >= 2 ? per_layer_tokens : 0);
      hits.push_back(c == 2 && l >= 2 ? sk + per_layer_tokens / 50 : 0);
      lf.push_back(156'250'000'000);
      le.push_back(156'250'000'000 * (per_layer_tokens - sk) / per_layer_tokens);
    }
  }
  pl.add("policy", pp).add("index", pi).add("layer", layer).add("n_block_run", run).add("n_block_skip", skipped);
  pl.add("n_mlp_skip", mlp).add("cache_lookups", lookups).add("cache_hits", hits);
  pl.add("flops_full", lf).add("flops_executed", le);
  w.write_table("/per_layer", pl);
  w.commit();
}

void write_index_bench(const std::string& path) {
  ReportWriter w(path);
  write_run_info(w, fixed_info(1));
  w.set_attr("command", std::string("index-bench"));
  Table t;
  std::vector<std::string> desc, backend;
  std::vector<int64_t> n_keys, n_queries;
  std::vector<double> p50, p90, p99, qps, recall;
  const std::vector<std::string> descs = {"faiss:Flat", "faiss:HNSW32", "faiss:IVF64,Flat|nprobe=8", "torch:flat"};
  const std::vector<double> base = {2e-4, 1.5e-4, 1.2e-4, 3e-4};  // seconds at 1024 keys
  const std::vector<double> growth = {1.0, 0.25, 0.5, 0.9};       // exponent of the size ratio
  for (int64_t n : {1024, 4096, 16384, 65536}) {
    for (size_t d = 0; d < descs.size(); ++d) {
      desc.push_back(descs[d]);
      backend.push_back(descs[d].substr(0, descs[d].find(':')));
      n_keys.push_back(n);
      n_queries.push_back(64);
      const double lat = base[d] * std::pow(static_cast<double>(n) / 1024, growth[d]);
      p50.push_back(lat);
      p90.push_back(lat * 1.2);
      p99.push_back(lat * 1.6);
      qps.push_back(64 / lat);
      recall.push_back(d == 0 || d == 3 ? 1.0 : 0.97 - 0.01 * static_cast<double>(d));
    }
  }
  t.add("descriptor", desc).add("backend", backend).add("n_keys", n_keys).add("n_queries", n_queries);
  t.add("queries_per_s", qps).add("latency_p50_s", p50).add("latency_p90_s", p90).add("latency_p99_s", p99);
  t.add("recall_at_1", recall);
  w.write_table("/index/bench", t);
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
    write_run(dir + "/run_w1.h5", 1);
    write_run(dir + "/run_w2.h5", 2);
    write_index_bench(dir + "/index_bench.h5");
    {
      ReportWriter w(dir + "/no_figures.h5");
      write_run_info(w, fixed_info(1));
      w.write_table("/summary", Table().add("policy", std::vector<std::string>{"none"}).add("n_tokens", std::vector<int64_t>{1}));
      w.commit();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_sample_reports: %s\n", e.what());
    return 1;
  }
  return 0;
}
