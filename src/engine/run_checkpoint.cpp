#include "engine/run_checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "core/error.h"
#include "core/signals.h"
#include "engine/record_fields.h"
#include "skip/state_io.h"

namespace semskip {

namespace {

namespace fs = std::filesystem;

// Bumped when the layout below changes: older files are refused, not misread.
constexpr const char* kStateFormat = "semskip-run-state-1";

template <typename Record>
void write_records(StateWriter& w, const report::FieldTable<Record>& fields, const std::vector<Record>& rows) {
  std::vector<int64_t> ints;
  std::vector<double> reals;
  for (const Record& r : rows) fields.pack(r, ints, reals);
  w.i64(static_cast<int64_t>(rows.size()));
  w.i64s(ints);
  w.i64(static_cast<int64_t>(reals.size()));
  for (double v : reals) w.f64(v);
}

template <typename Record>
std::vector<Record> read_records(StateReader& r, const report::FieldTable<Record>& fields) {
  const int64_t n = r.i64();
  const std::vector<int64_t> ints = r.i64s();
  std::vector<double> reals(static_cast<size_t>(std::max<int64_t>(0, r.i64())));
  for (double& v : reals) v = r.f64();
  const size_t wi = fields.packed_ints(), wr = fields.packed_reals();
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0 && ints.size() == static_cast<size_t>(n) * wi &&
                               reals.size() == static_cast<size_t>(n) * wr,
                           "{}: saved records do not match their field table", r.what());
  std::vector<Record> out(static_cast<size_t>(n));
  for (size_t i = 0; i < out.size(); ++i)
    fields.unpack(ints.data() + i * wi, wr > 0 ? reals.data() + i * wr : nullptr, out[i]);
  return out;
}

void write_comm(StateWriter& w, const CommTotals& c) {
  std::vector<int64_t> v;
  for (const CollectiveCounters& k : c.by_kind) v.insert(v.end(), {k.n_calls, k.bytes_sent, k.bytes_recv, k.t_ns});
  w.i64s(v);
}

CommTotals read_comm(StateReader& r) {
  const std::vector<int64_t> v = r.i64s();
  CommTotals c;
  SEMSKIP_THROW_IF_NOT_MSG(v.size() == 4 * c.by_kind.size(), "{}: saved communication counters are damaged",
                           r.what());
  for (size_t k = 0; k < c.by_kind.size(); ++k)
    c.by_kind[k] = {v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]};
  return c;
}

void write_result(StateWriter& w, const PolicyResult& p) {
  w.tag("policy_result");
  w.str(p.policy);
  w.str(p.index);
  w.i64s(p.flops_full.to_flat());
  w.i64s(p.flops_skip.to_flat());
  w.i64s(p.layers.n_block_run);
  w.i64s(p.layers.n_block_skip);
  w.i64s(p.layers.n_mlp_skip);
  w.i64s(p.layers.n_kv_propagated);
  write_records(w, request_fields(), p.requests);
  write_records(w, step_fields(), p.steps);
  w.i64s({p.t_full_ns, p.t_skip_ns, p.t_lookup_ns, p.t_calib_ns});
  write_comm(w, p.comm);
  write_comm(w, p.comm_full);
  w.i64s({p.ep.n_calls, p.ep.n_pairs_routed, p.ep.n_pairs_sent, p.ep.n_pairs_run, p.ep.n_pairs_recv,
          p.ep.t_alltoall_ns, p.ep.t_experts_ns});
}

PolicyResult read_result(StateReader& r) {
  r.expect_tag("policy_result");
  PolicyResult p;
  p.policy = r.str();
  p.index = r.str();
  try {
    p.flops_full = FlopCounter::from_flat(r.i64s());
    p.flops_skip = FlopCounter::from_flat(r.i64s());
  } catch (const Error& e) {
    SEMSKIP_THROW_MSG("{}: {}", r.what(), e.what());
  }
  p.layers.n_block_run = r.i64s();
  p.layers.n_block_skip = r.i64s();
  p.layers.n_mlp_skip = r.i64s();
  p.layers.n_kv_propagated = r.i64s();
  const size_t L = p.layers.n_block_run.size();
  SEMSKIP_THROW_IF_NOT_MSG(p.layers.n_block_skip.size() == L && p.layers.n_mlp_skip.size() == L &&
                               p.layers.n_kv_propagated.size() == L,
                           "{}: saved per-layer counts are damaged", r.what());
  p.requests = read_records(r, request_fields());
  p.steps = read_records(r, step_fields());
  const std::vector<int64_t> t = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(t.size() == 4, "{}: saved timers are damaged", r.what());
  p.t_full_ns = t[0], p.t_skip_ns = t[1], p.t_lookup_ns = t[2], p.t_calib_ns = t[3];
  p.comm = read_comm(r);
  p.comm_full = read_comm(r);
  const std::vector<int64_t> ep = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(ep.size() == 7, "{}: saved expert-parallel counters are damaged", r.what());
  p.ep = {ep[0], ep[1], ep[2], ep[3], ep[4], ep[5], ep[6]};
  return p;
}

void write_header(StateWriter& w, int rank, int world_size, const std::string& config_json, int64_t steps_done,
                  size_t n_policies) {
  w.tag(kStateFormat);
  w.i64s({rank, world_size, steps_done, static_cast<int64_t>(n_policies)});
  w.str(config_json);
}

// Writes `bytes` to `path` durably: a temporary file, flushed to disk, renamed over the name.
void write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  set_inflight_temp(tmp.c_str());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  SEMSKIP_THROW_IF_NOT_MSG(f != nullptr, "cannot write '{}': {}", tmp, std::strerror(errno));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
                       fsync(fileno(f)) == 0;
  const int err = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = written && closed ? errno : err;
    std::remove(tmp.c_str());
    set_inflight_temp(nullptr);
    SEMSKIP_THROW_MSG("cannot write '{}': {}", path, std::strerror(e));
  }
  set_inflight_temp(nullptr);
}

// This rank's state files in `dir` and the boundary each is of.
std::vector<std::pair<int64_t, fs::path>> rank_files(const std::string& dir, int rank) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  const std::string prefix = "rank" + std::to_string(rank) + ".step";
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == std::string::npos || dot == 0) continue;
    const std::string digits = rest.substr(0, dot);
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    out.emplace_back(std::stoll(digits), e.path());
  }
  return out;
}

}  // namespace

std::string checkpoint_dir(const std::string& report) { return report + ".checkpoint"; }

std::string checkpoint_file(const std::string& report, int rank, int64_t steps_done) {
  return checkpoint_dir(report) + "/rank" + std::to_string(rank) + ".step" + std::to_string(steps_done) + ".state";
}

void save_checkpoint(const std::string& report, int rank, int world_size, const std::string& config_json,
                     int64_t steps_done, const std::vector<PolicyResult>& results,
                     const std::vector<std::unique_ptr<SkipPolicy>>& policies, int64_t keep_from) {
  SEMSKIP_ASSERT(results.size() == policies.size());
  StateWriter w;
  write_header(w, rank, world_size, config_json, steps_done, policies.size());
  for (size_t p = 0; p < policies.size(); ++p) {
    write_result(w, results[p]);
    policies[p]->save_state(w);
  }
  std::error_code ec;
  fs::create_directories(checkpoint_dir(report), ec);
  SEMSKIP_THROW_IF_NOT_MSG(!ec, "cannot create '{}': {}", checkpoint_dir(report), ec.message());
  write_atomically(checkpoint_file(report, rank, steps_done), w.bytes());
  for (const auto& [step, path] : rank_files(checkpoint_dir(report), rank))
    if (step < keep_from || (step != steps_done && path.extension() == ".tmp")) fs::remove(path, ec);
}

std::vector<PolicyResult> load_checkpoint(const std::string& report, int rank, int world_size,
                                          const std::string& config_json, int64_t steps_done,
                                          std::vector<std::unique_ptr<SkipPolicy>>& policies) {
  const std::string path = checkpoint_file(report, rank, steps_done);
  std::ifstream in(path, std::ios::binary);
  SEMSKIP_THROW_IF_NOT_MSG(in.good(), "{}: cannot read the state of rank {} at step {} that the report '{}' "
                           "needs to resume (missing?)", path, rank, steps_done, report);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  StateReader r(bytes.str(), path);
  r.expect_tag(kStateFormat);
  const std::vector<int64_t> h = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(h.size() == 4 && h[0] == rank && h[1] == world_size && h[2] == steps_done,
                           "{}: the state is not of rank {} of {} at step {}", path, rank, world_size, steps_done);
  SEMSKIP_THROW_IF_NOT_MSG(h[3] == static_cast<int64_t>(policies.size()),
                           "{}: the state holds {} policies, this run has {}", path, h[3], policies.size());
  SEMSKIP_THROW_IF_NOT_MSG(r.str() == config_json, "{}: the state was saved by a run of another configuration",
                           path);
  std::vector<PolicyResult> out;
  for (auto& policy : policies) {
    out.push_back(read_result(r));
    policy->load_state(r);
  }
  SEMSKIP_THROW_IF_NOT_MSG(r.at_end(), "{}: unexpected bytes after the saved state", path);
  return out;
}

void remove_checkpoints(const std::string& report, int rank) {
  std::error_code ec;
  for (const auto& [step, path] : rank_files(checkpoint_dir(report), rank)) fs::remove(path, ec);
}

void remove_checkpoint_dir(const std::string& report) {
  std::error_code ec;
  fs::remove(checkpoint_dir(report), ec);  // only when empty: another rank's files stay
}

}  // namespace semskip
