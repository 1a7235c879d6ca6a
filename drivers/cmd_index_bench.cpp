// semskip index-bench: build time, search speed, recall@k against exact search, memory and
// charged lookup FLOPs of vector-index backends over a Cartesian sweep (docs/conventions.md rule 14).
// The measurement of one point is index/index_benchmark.h; this file expands the sweep,
// prints the table and writes the report:
//
//   /index/bench          one row per sweep point (columns: index_bench_fields())
//   /index/bench_samples  the raw timed samples (columns: index_bench_sample_fields())
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "drivers/report_flags.h"
#include "core/error.h"
#include "core/strings.h"
#include "core/timing.h"
#include "core/version.h"
#include "drivers/command.h"
#include "index/descriptor.h"
#include "index/exact_search.h"
#include "index/index_benchmark.h"
#include "index/index_factory.h"
#include "index/kokkos_scope.h"
#include "index/npy_file.h"
#include "metrics/timing.h"
#include "reports/report_writer.h"
#include "reports/run_info.h"
#include "reports/table_text.h"

namespace semskip {

namespace {

struct IndexBenchOptions {
  std::vector<std::string> indexes;
  std::string n = "10000";
  std::string dim;  // empty: 256 for synthetic data, the file's dimension for a .npy file
  std::string queries = "32";
  std::string k = "10";
  std::string data = "clustered";
  uint64_t seed = 0;
  int64_t warmup = 1;
  int64_t repeat = 20;
  int64_t threads = 0;
  std::string report;
  ReportFlags report_flags;  // --metadata, --force
  bool json = false;         // --json: the result table as JSON instead of text
  std::string reference_json;  // --reference-json: the plain matmul (+ top-k) times, as JSON
  std::string query_device;    // --query-device: engine-step mode
  int64_t value_dim = 0;       // --value-dim
};

constexpr int64_t kDefaultDim = 256;

// "10000,100000" → {10000, 100000}; each ≥ 1.
std::vector<int64_t> parse_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> out;
  for (const std::string& item : split(text, ',')) {
    const int64_t v = parse_int(item, "option " + option);
    SEMSKIP_THROW_IF_NOT_MSG(v >= 1, "option {}: values must be ≥ 1, got {}", option, v);
    out.push_back(v);
  }
  return out;
}

bool is_synthetic(const std::string& data) { return data == "clustered" || data == "uniform"; }

// The swept values, parsed once: they are also the resolved configuration of the report.
struct Sweep {
  std::vector<int64_t> n, dim, queries, k;
};

Sweep parse_sweep(const IndexBenchOptions& o) {
  SEMSKIP_THROW_IF_NOT_MSG(!o.indexes.empty(), "give at least one --index descriptor");
  Sweep s;
  s.n = parse_list(o.n, "--n");
  if (!o.dim.empty()) {
    s.dim = parse_list(o.dim, "--dim");
  } else {
    s.dim = {is_synthetic(o.data) ? kDefaultDim : read_npy_matrix(o.data).cols};
  }
  s.queries = parse_list(o.queries, "--queries");
  s.k = parse_list(o.k, "--k");
  // recall@k with k above the stored keys would count neighbours that cannot exist as found
  // (recall 1.000); such a point measures nothing, so it is refused before any work.
  for (int64_t n : s.n)
    for (int64_t k : s.k)
      SEMSKIP_THROW_IF_NOT_MSG(k <= n, "--k {} exceeds --n {}: an index of {} keys has no {} neighbours to find",
                               k, n, n, k);
  return s;
}

// The sweep, expanded up front: descriptors vary fastest, so consecutive points share data.
std::vector<IndexBenchCase> expand(const IndexBenchOptions& o, const Sweep& s) {
  std::vector<IndexBenchCase> cases;
  for (int64_t n : s.n)
    for (int64_t dim : s.dim)
      for (int64_t queries : s.queries)
        for (int64_t k : s.k)
          for (const std::string& descriptor : o.indexes)
            cases.push_back({descriptor, o.data, n, dim, queries, k, o.seed, o.warmup, o.repeat,
                             o.query_device, o.value_dim});
  return cases;
}

// What a terminal shows: the columns one compares, times in ms, memory in MiB.
std::string printed_table(const std::vector<IndexBenchResult>& results) {
  report::TextColumn desc{"index", false, {}}, n{"n", true, {}}, d{"dim", true, {}},
      q{"batch", true, {}}, k{"k", true, {}}, build{"build_s", true, {}}, qps{"QPS", true, {}},
      p50{"p50_ms", true, {}}, p99{"p99_ms", true, {}}, r1{"recall@1", true, {}},
      rk{"recall@k", true, {}}, mem{"MiB", true, {}}, flops{"MFLOP/query", true, {}};
  for (const IndexBenchResult& r : results) {
    desc.cells.push_back(r.config.descriptor);
    n.cells.push_back(std::to_string(r.config.n));
    d.cells.push_back(std::to_string(r.config.dim));
    q.cells.push_back(std::to_string(r.config.queries));
    k.cells.push_back(std::to_string(r.config.k));
    build.cells.push_back(fmt::format("{:.2f}", r.build_s));
    qps.cells.push_back(fmt::format("{:.0f}", r.figures.queries_per_s));
    p50.cells.push_back(fmt::format("{:.3f}", 1e3 * r.figures.latency_p50_s));
    p99.cells.push_back(fmt::format("{:.3f}", 1e3 * r.figures.latency_p99_s));
    r1.cells.push_back(fmt::format("{:.3f}", r.recall_at_1));
    rk.cells.push_back(fmt::format("{:.3f}", r.recall_at_k));
    mem.cells.push_back(fmt::format("{:.1f}", r.memory_bytes / 1048576.0));
    flops.cells.push_back(fmt::format("{:.3f}", r.lookup_flops_batch / 1e6 / r.config.queries));
  }
  return report::render_text({desc, n, d, q, k, build, qps, p50, p99, r1, rk, mem, flops});
}

// The hardware reference an exact GPU search is held to: one plain matmul of a query batch
// against n random keys ([q, d] × [d, n]; fp16 on a GPU, float32 on CPU), alone and followed
// by a full-width top-k, timed like a search (warm-up, then `repeat` samples, each ended by a
// device synchronisation). One JSON object per (n, dim, queries, k).
nlohmann::ordered_json reference_matmul(const Sweep& s, int64_t warmup, int64_t repeat) {
  const at::Device device = at::hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  const at::ScalarType dtype = device.is_cuda() ? at::kHalf : at::kFloat;
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (int64_t n : s.n)
    for (int64_t dim : s.dim)
      for (int64_t queries : s.queries)
        for (int64_t k : s.k) {
          const auto opts = at::TensorOptions().device(device).dtype(dtype);
          at::Tensor keys = at::randn({n, dim}, opts);     // [n, dim]
          at::Tensor q = at::randn({queries, dim}, opts);  // [queries, dim]
          auto time = [&](bool with_topk) {
            std::vector<double> samples;
            for (int64_t r = 0; r < warmup + repeat; ++r) {
              const Stopwatch clock;
              at::Tensor scores = at::mm(q, keys.t());
              if (with_topk) (void)scores.topk(std::min(k, n), 1);
              synchronize(device);
              if (r >= warmup) samples.push_back(clock.seconds());
            }
            return summarize_samples(samples).median_s;
          };
          const double mm_s = time(false);
          const double mm_topk_s = time(true);
          const double flops = 2.0 * static_cast<double>(queries) * dim * n;
          out.push_back({{"device", device.str()}, {"dtype", dtype == at::kHalf ? "fp16" : "fp32"}, {"n_keys", n},
                         {"dim", dim}, {"n_queries", queries}, {"k", k}, {"matmul_s", mm_s},
                         {"matmul_topk_s", mm_topk_s}, {"matmul_flops", flops},
                         {"matmul_tflops_per_s", flops / mm_s / 1e12}});
          std::fprintf(stderr, "index-bench reference: %s %s matmul n=%lld dim=%lld batch=%lld: %.3f ms, "
                       "with top-%lld %.3f ms\n", device.str().c_str(), dtype == at::kHalf ? "fp16" : "fp32",
                       static_cast<long long>(n), static_cast<long long>(dim),
                       static_cast<long long>(queries), 1e3 * mm_s, static_cast<long long>(k),
                       1e3 * mm_topk_s);
        }
  return out;
}

int run_index_bench(const IndexBenchOptions& o) {
  KokkosScope kokkos;  // kokkos: indexes need it; every index below is gone before it ends
  SEMSKIP_THROW_IF_NOT_MSG(o.repeat >= 1 && o.warmup >= 0 && o.threads >= 0 && o.value_dim >= 0,
                           "need --repeat ≥ 1, --warmup ≥ 0, --threads ≥ 0, --value-dim ≥ 0");
  if (o.threads > 0) at::set_num_threads(static_cast<int>(o.threads));
  const Sweep sweep = parse_sweep(o);
  const std::vector<IndexBenchCase> cases = expand(o, sweep);
  // Every descriptor is checked for every dimension before anything is measured.
  for (const IndexBenchCase& c : cases) make_index(c.descriptor, c.dim);
  if (std::any_of(o.indexes.begin(), o.indexes.end(), [](const std::string& d) { return d.rfind("kokkos:", 0) == 0; }))
    std::fprintf(stderr, "index-bench: kokkos execution space: %s\n", kokkos_execution_space().c_str());
  // Before any work: the report can be written (--force to replace one), the metadata parses.
  const std::string user_metadata = o.report.empty() ? "{}" : check_report_flags(o.report_flags, o.report);
  report::RunInfo info = collect_environment({});  // created_utc: when the run started
  info.user_metadata_json = user_metadata;
  std::unique_ptr<report::ReportWriter> writer;
  if (!o.report.empty())
    writer = std::make_unique<report::ReportWriter>(std::filesystem::absolute(o.report).string());

  // Before the sweep, so that a path that cannot be written fails early.
  if (!o.reference_json.empty()) {
    const nlohmann::ordered_json ref = reference_matmul(sweep, std::max<int64_t>(o.warmup, 3), o.repeat);
    std::FILE* f = std::fopen(o.reference_json.c_str(), "w");
    SEMSKIP_THROW_IF_NOT_MSG(f, "--reference-json {}: cannot open for writing", o.reference_json);
    const std::string text = ref.dump(2) + "\n";
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    SEMSKIP_THROW_IF_NOT_MSG(std::fclose(f) == 0 && ok, "--reference-json {}: write failed",
                             o.reference_json);
  }
  std::vector<IndexBenchResult> results;
  IndexBenchData data;
  std::vector<int64_t> truth;  // int64 [repeat·queries, k]
  std::string data_key, truth_key;
  IndexBenchCache kept;  // an nprobe / efSearch sweep reuses the index it trained
  for (size_t i = 0; i < cases.size(); ++i) {
    const IndexBenchCase& c = cases[i];
    const int64_t n_query_rows = (c.warmup + c.repeat) * c.queries;
    const std::string dk = fmt::format("{}/{}/{}/{}", c.n, c.dim, n_query_rows, c.seed);
    if (dk != data_key) {
      data = make_index_bench_data(c.data, c.n, c.dim, n_query_rows, c.seed);
      data_key = dk;
      truth_key.clear();
    }
    if (truth_key != fmt::format("{}/{}", dk, c.k)) {
      truth.assign(static_cast<size_t>(c.repeat * c.queries * c.k), -1);
      exact_search(c.n, data.keys.data(), c.repeat * c.queries,
                   data.queries.data() + c.warmup * c.queries * c.dim, c.dim, c.k, truth.data());
      truth_key = fmt::format("{}/{}", dk, c.k);
    }
    std::fprintf(stderr, "index-bench [%zu/%zu] %s n=%lld dim=%lld batch=%lld k=%lld\n", i + 1,
                 cases.size(), c.descriptor.c_str(), static_cast<long long>(c.n),
                 static_cast<long long>(c.dim), static_cast<long long>(c.queries),
                 static_cast<long long>(c.k));
    results.push_back(run_index_bench_case(c, data, truth, &kept, dk));
  }
  if (o.json) {
    // One object per result row, every column of /index/bench (the same field table).
    const report::Table t = index_bench_fields().table(results);
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (size_t r = 0; r < t.n_rows(); ++r) {
      nlohmann::ordered_json row;
      for (const report::Column& c : t.columns())
        std::visit([&](const auto& v) { row[c.name] = v[r]; }, c.data);
      rows.push_back(std::move(row));
    }
    std::fputs((rows.dump(2) + "\n").c_str(), stdout);
  } else {
    std::fputs(printed_table(results).c_str(), stdout);
  }

  if (writer) {
    const nlohmann::json config = {
        {"index", o.indexes}, {"n", sweep.n},       {"dim", sweep.dim},       {"queries", sweep.queries},
        {"k", sweep.k},       {"data", o.data},     {"seed", o.seed},         {"warmup", o.warmup},
        {"repeat", o.repeat}, {"threads", at::get_num_threads()}, {"query_device", o.query_device},
        {"value_dim", o.value_dim}};
    info.config_json = config.dump();
    const std::vector<GpuDescription> visible = visible_gpus();
    for (const IndexBenchResult& r : results)
      if (r.device != "cpu" && std::find(info.gpus.begin(), info.gpus.end(), r.device) == info.gpus.end()) {
        info.gpus.push_back(r.device);
        const at::Device d(r.device);
        const size_t i = d.has_index() ? static_cast<size_t>(d.index()) : 0;
        info.gpu_memory_bytes.push_back(i < visible.size() ? visible[i].memory_bytes : 0);
      }
    report::write_run_info(*writer, info);
    writer->set_attr("command", std::string("index-bench"));
    for (IndexBenchResult& r : results) r.host = info.hosts.front(), r.git_revision = git_revision();
    writer->write_table("/index/bench", index_bench_fields().table(results));
    writer->write_table("/index/bench_samples", index_bench_sample_fields().table(index_bench_samples(results)));
    writer->commit();
    std::fprintf(stderr, "index-bench: report written to %s\n", o.report.c_str());
  }
  return 0;
}

}  // namespace

void add_index_bench_command(CLI::App& app, CommandRegistry& reg) {
  auto o = std::make_shared<IndexBenchOptions>();
  CLI::App* sub = reg.add(app, "index-bench",
                          "Vector-index backends: build time, QPS, latency, recall@k against exact "
                          "search, memory and charged lookup FLOPs, over a sweep",
                          [o]() { return run_index_bench(*o); });
  sub->add_option("--index", o->indexes,
                  "index descriptor, repeatable (faiss:<factory>[|nprobe=…], torch:flat[|device=cuda], "
                  "kokkos:flat); commas belong to FAISS factories, so give one per --index")
      ->required();
  sub->add_option("--n", o->n, "stored keys, comma list")->capture_default_str();
  sub->add_option("--dim", o->dim, "vector dimension, comma list (default: 256, or the .npy file's)");
  sub->add_option("--queries", o->queries, "queries per search batch, comma list")->capture_default_str();
  sub->add_option("--k", o->k, "neighbours per query, comma list")->capture_default_str();
  sub->add_option("--data", o->data,
                  "clustered | uniform | a .npy file of float32 [rows, dim] (keys: the first n rows, "
                  "queries: the rows after them)")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of the synthetic data")->capture_default_str();
  sub->add_option("--warmup", o->warmup, "untimed batches before timing")->capture_default_str();
  sub->add_option("--repeat", o->repeat, "timed batches, each of new queries")->capture_default_str();
  sub->add_option("--threads", o->threads,
                  "OpenMP threads of FAISS and LibTorch (one runtime); 0 keeps LibTorch's default, "
                  "the physical cores it detects")
      ->capture_default_str();
  sub->add_option("--report", o->report, "HDF5 report to write (tables /index/bench, /index/bench_samples)");
  add_report_flags(sub, o->report_flags);
  sub->add_option("--query-device", o->query_device,
                  "engine-step mode: queries start and results end on this device (cpu, cuda), so a "
                  "CPU index pays the copies a run with keys on the GPU would");
  sub->add_option("--value-dim", o->value_dim,
                  "with each batch, fetch every query's best match's cached value (bf16, this wide) "
                  "to the queries' device, as a run's lookup does (0: no values)")
      ->capture_default_str();
  sub->add_option("--reference-json", o->reference_json,
                  "also time a plain matmul of each batch against n keys, alone and with top-k (fp16 "
                  "on the GPU, float32 on CPU), and write the times as JSON to this file");
  sub->add_flag("--json", o->json, "Print the result table as JSON (one object per row, the columns of /index/bench)");
}

}  // namespace semskip
