#include "reports/report_scaling.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "reports/report_merge.h"
#include "reports/run_info.h"

namespace semskip::report {

namespace {

using json = nlohmann::json;

struct Row {
  std::string policy, index;
  int64_t n_requests = 0, n_tokens = 0;
  double t_skip_s = 0, tokens_per_s = 0;
};

template <typename T>
const std::vector<T>& column(const Table& t, const std::string& name, const std::string& file) {
  const Column* c = t.find(name);
  SEMSKIP_THROW_IF_NOT_MSG(c != nullptr, "report '{}': /summary has no column '{}'", file, name);
  const auto* v = std::get_if<std::vector<T>>(&c->data);
  SEMSKIP_THROW_IF_NOT_MSG(v != nullptr, "report '{}': /summary column '{}' has the wrong type", file, name);
  return *v;
}

std::vector<Row> summary_rows(const ReportReader& r) {
  SEMSKIP_THROW_IF_NOT_MSG(r.has("/summary"), "report '{}' has no /summary table (not a report of `semskip run`?)",
                           r.path());
  const Table t = r.read_table("/summary");
  const auto& policy = column<std::string>(t, "policy", r.path());
  const auto& index = column<std::string>(t, "index", r.path());
  const auto& n_requests = column<int64_t>(t, "n_requests", r.path());
  const auto& n_tokens = column<int64_t>(t, "n_tokens", r.path());
  const auto& t_skip = column<double>(t, "t_skip_s", r.path());
  const auto& tps = column<double>(t, "tokens_per_s", r.path());
  std::vector<Row> rows;
  for (size_t i = 0; i < t.n_rows(); ++i) {
    rows.push_back({policy[i], index[i], n_requests[i], n_tokens[i], t_skip[i], tps[i]});
    SEMSKIP_THROW_IF_NOT_MSG(t_skip[i] > 0, "report '{}': /summary row {} ({}) has t_skip_s {}, no time to scale",
                             r.path(), i, policy[i], t_skip[i]);
  }
  return rows;
}

}  // namespace

ScalingMode parse_scaling_mode(const std::string& text) {
  if (text == "strong") return ScalingMode::strong;
  if (text == "weak") return ScalingMode::weak;
  SEMSKIP_THROW_MSG("scaling mode '{}': expected 'strong' or 'weak'", text);
}

const char* scaling_mode_name(ScalingMode mode) { return mode == ScalingMode::strong ? "strong" : "weak"; }
const char* scaling_unit_name(ScalingUnit unit) { return unit == ScalingUnit::nodes ? "nodes" : "ranks"; }

int64_t report_node_count(const ReportReader& r) {
  const RunInfo info = read_run_info(r);
  return static_cast<int64_t>(std::set<std::string>(info.hosts.begin(), info.hosts.end()).size());
}

ScalingUnit default_scaling_unit(const std::vector<const ReportReader*>& readers) {
  std::set<int64_t> nodes;
  for (const ReportReader* r : readers) nodes.insert(report_node_count(*r));
  return nodes.size() > 1 ? ScalingUnit::nodes : ScalingUnit::ranks;
}

Table scaling_table(const std::vector<const ReportReader*>& readers, ScalingMode mode, ScalingUnit unit,
                    const std::vector<std::string>& vary) {
  SEMSKIP_THROW_IF_NOT_MSG(readers.size() >= 2, "scaling needs reports of at least two sizes, got {} report",
                           readers.size());
  std::vector<std::string> ignore(vary);
  for (const char* k : kAlwaysVaryingKeys) ignore.emplace_back(k);
  ignore.emplace_back("threads");  // each size may give its ranks their own share of the cores
  if (mode == ScalingMode::weak) {
    ignore.emplace_back("max_requests");
    ignore.emplace_back("workload");
  }
  const json config0 = report_config(*readers[0]);
  const RunInfo info0 = read_run_info(*readers[0]);
  struct Point {
    size_t source;
    int64_t nodes, ranks, size;
    std::vector<Row> rows;
  };
  std::vector<Point> points;
  std::map<int64_t, std::string> sizes;  // size -> file
  for (size_t i = 0; i < readers.size(); ++i) {
    const ReportReader& r = *readers[i];
    const RunInfo info = read_run_info(r);
    SEMSKIP_THROW_IF_NOT_MSG(info.git_revision == info0.git_revision,
                             "report '{}': git_revision '{}', but '{}' of '{}' (one build for every size)", r.path(),
                             info.git_revision, info0.git_revision, readers[0]->path());
    const std::vector<std::string> diff = config_differences(config0, report_config(r), ignore);
    SEMSKIP_THROW_IF_NOT_MSG(diff.empty(),
                             "report '{}': its configuration differs from '{}' in {} (declare the keys the "
                             "experiment varies with --vary KEY)",
                             r.path(), readers[0]->path(), join(diff, ", "));
    Point p{i, report_node_count(r), info.world_size, 0, summary_rows(r)};
    p.size = unit == ScalingUnit::nodes ? p.nodes : p.ranks;
    const auto [it, fresh] = sizes.emplace(p.size, r.path());
    SEMSKIP_THROW_IF_NOT_MSG(fresh, "reports '{}' and '{}' both ran on {} {}: one report per size", it->second,
                             r.path(), p.size, scaling_unit_name(unit));
    points.push_back(std::move(p));
  }
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.size < b.size; });
  const Point& base = points.front();
  for (const Point& p : points) {
    SEMSKIP_THROW_IF_NOT_MSG(p.rows.size() == base.rows.size(),
                             "report '{}' has {} configurations in /summary, '{}' has {}",
                             readers[p.source]->path(), p.rows.size(), readers[base.source]->path(), base.rows.size());
    for (size_t j = 0; j < p.rows.size(); ++j) {
      const Row& a = base.rows[j];
      const Row& b = p.rows[j];
      SEMSKIP_THROW_IF_NOT_MSG(a.policy == b.policy && a.index == b.index,
                               "report '{}': /summary row {} is ({}, {}), but ({}, {}) in '{}'",
                               readers[p.source]->path(), j, b.policy, b.index, a.policy, a.index,
                               readers[base.source]->path());
      if (mode == ScalingMode::strong) {
        SEMSKIP_THROW_IF_NOT_MSG(b.n_requests == a.n_requests,
                                 "strong scaling runs the same requests at every size, but '{}' ran {} and '{}' {} "
                                 "(use --mode weak for the same requests per rank)",
                                 readers[p.source]->path(), b.n_requests, readers[base.source]->path(), a.n_requests);
      } else {
        SEMSKIP_THROW_IF_NOT_MSG(b.n_requests * base.ranks == a.n_requests * p.ranks,
                                 "weak scaling runs the same requests per rank, but '{}' ran {} on {} ranks and '{}' "
                                 "{} on {}",
                                 readers[p.source]->path(), b.n_requests, p.ranks, readers[base.source]->path(),
                                 a.n_requests, base.ranks);
      }
    }
  }
  std::vector<std::string> policy, index;
  std::vector<int64_t> n_nodes, n_ranks, size, n_requests, n_tokens, source;
  std::vector<double> t_skip, tps, speedup, efficiency;
  for (size_t j = 0; j < base.rows.size(); ++j) {
    for (const Point& p : points) {
      const Row& a = base.rows[j];
      const Row& b = p.rows[j];
      const double ratio = static_cast<double>(p.size) / static_cast<double>(base.size);
      double s = 0, e = 0;
      if (mode == ScalingMode::strong) {
        s = a.t_skip_s / b.t_skip_s;
        e = s / ratio;
      } else {
        s = a.tokens_per_s > 0 ? b.tokens_per_s / a.tokens_per_s : 0.0;
        e = a.t_skip_s / b.t_skip_s;
      }
      policy.push_back(b.policy);
      index.push_back(b.index);
      n_nodes.push_back(p.nodes);
      n_ranks.push_back(p.ranks);
      size.push_back(p.size);
      n_requests.push_back(b.n_requests);
      n_tokens.push_back(b.n_tokens);
      t_skip.push_back(b.t_skip_s);
      tps.push_back(b.tokens_per_s);
      speedup.push_back(s);
      efficiency.push_back(e);
      source.push_back(static_cast<int64_t>(p.source));
    }
  }
  Table t;
  t.add("policy", policy)
      .add("index", index)
      .add("n_nodes", n_nodes)
      .add("n_ranks", n_ranks)
      .add("size", size)
      .add("n_requests", n_requests)
      .add("n_tokens", n_tokens)
      .add("t_skip_s", t_skip)
      .add("tokens_per_s", tps)
      .add("speedup", speedup)
      .add("efficiency", efficiency)
      .add("source", source);
  return t;
}

}  // namespace semskip::report
