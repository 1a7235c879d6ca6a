#include "engine/run_gather.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "comm/communicator.h"
#include "engine/record_fields.h"

namespace semskip {

namespace {

// rows: a flat row-major buffer of `width` columns -> int64 or fp64 [n, width].
template <typename T>
at::Tensor matrix(const std::vector<T>& rows, int64_t width) {
  const at::ScalarType type = std::is_same_v<T, double> ? at::kDouble : at::kLong;
  if (width == 0) return at::empty({0, 0}, type);
  SEMSKIP_ASSERT(static_cast<int64_t>(rows.size()) % width == 0);
  const int64_t n = static_cast<int64_t>(rows.size()) / width;
  return at::tensor(rows, type).view({n, width});
}

// Every rank's rows, in rank order.
at::Tensor gathered(Communicator* world, const at::Tensor& mine) {
  if (!world || world->size() == 1) return mine;
  return world->allgatherv(mine);
}

// Every rank's records of one type, in rank order: each rank packs its records by their field
// table (int64 fields into one matrix, float64 fields into another), the matrices are
// gathered, and the rows unpacked back into records.
template <typename Record>
std::vector<Record> gather_records(const report::FieldTable<Record>& fields, const std::vector<Record>& mine,
                                   Communicator* world) {
  const int64_t wi = static_cast<int64_t>(fields.packed_ints()), wr = static_cast<int64_t>(fields.packed_reals());
  std::vector<int64_t> ints;
  std::vector<double> reals;
  for (const Record& r : mine) fields.pack(r, ints, reals);
  at::Tensor all_i = gathered(world, matrix(ints, wi)).contiguous();
  at::Tensor all_r = wr > 0 ? gathered(world, matrix(reals, wr)).contiguous() : at::Tensor();
  const int64_t n = all_i.size(0);
  SEMSKIP_ASSERT(wi > 0 && (wr == 0 || all_r.size(0) == n));
  std::vector<Record> out(static_cast<size_t>(n));
  const int64_t* pi = all_i.data_ptr<int64_t>();
  const double* pr = wr > 0 ? all_r.data_ptr<double>() : nullptr;
  for (int64_t i = 0; i < n; ++i) fields.unpack(pi + i * wi, pr ? pr + i * wr : nullptr, out[static_cast<size_t>(i)]);
  return out;
}

// This rank's RankRecord of one policy (its rank is set from its position after the gather).
RankRecord rank_record(const PolicyResult& r, const RankMemory& memory) {
  RankRecord k;
  k.weight_bytes = memory.weight_bytes;
  k.peak_rss_bytes = memory.peak_rss_bytes;
  k.rank = r.rank;
  for (const StepRecord& s : r.steps) {
    k.n_tokens += s.n_tokens;
    k.n_steps += s.n_requests > 0 ? 1 : 0;
  }
  k.n_requests = static_cast<int64_t>(r.requests.size());
  k.flops_full = r.flops_full.total_model(AttnConvention::causal);
  k.flops_executed = r.flops_skip.total_model(AttnConvention::causal);
  k.flops_overhead = r.flops_skip.total_overhead();
  k.flops_insert = r.flops_skip.by_group(OpGroup::insert);
  k.flops_train = r.flops_skip.by_group(OpGroup::train);
  k.flops_correction = r.flops_skip.by_group(OpGroup::correction);
  k.t_full_ns = r.t_full_ns, k.t_skip_ns = r.t_skip_ns, k.t_lookup_ns = r.t_lookup_ns, k.t_calib_ns = r.t_calib_ns;
  k.t_comm_ns = r.comm.total().t_ns;
  k.t_full_comm_ns = r.comm_full.total().t_ns;
  k.cache = r.cache;
  k.comm = r.comm;
  k.ep = r.ep;
  return k;
}

// This rank's per-layer figures of one policy, layer by layer.
std::vector<LayerRecord> layer_records_of(const PolicyResult& r) {
  std::vector<LayerRecord> out;
  for (size_t l = 0; l < r.layers.n_block_run.size(); ++l) {
    const int li = static_cast<int>(l);
    out.push_back({static_cast<int64_t>(l), r.layers.n_block_run[l], r.layers.n_block_skip[l], r.layers.n_mlp_skip[l],
                   r.layers.n_kv_propagated[l], r.flops_full.by_layer_model(li, AttnConvention::causal),
                   r.flops_skip.by_layer_model(li, AttnConvention::causal), r.flops_skip.by_layer_overhead(li)});
  }
  return out;
}

void gather_ranks(const PolicyResult& r, Communicator* world, const RankMemory& memory, GatheredResult& g) {
  g.ranks = gather_records(rank_fields(), {rank_record(r, memory)}, world);
  for (size_t i = 0; i < g.ranks.size(); ++i) g.ranks[i].rank = static_cast<int>(i);
}

void gather_requests(const PolicyResult& r, Communicator* world, GatheredResult& g) {
  g.requests = gather_records(request_fields(), r.requests, world);
  // Rank-major from the gather -> the union order of one process running every rank's steps.
  std::stable_sort(g.requests.begin(), g.requests.end(),
                   [](const RequestRecord& a, const RequestRecord& b) { return a.step < b.step; });
}

void gather_steps(const PolicyResult& r, Communicator* world, GatheredResult& g) {
  g.steps = gather_records(step_fields(), r.steps, world);
  std::stable_sort(g.steps.begin(), g.steps.end(), [](const StepRecord& a, const StepRecord& b) {
    return a.step < b.step;
  });
}

// Per-layer figures summed over ranks (every rank has the same layers).
void gather_layers(const PolicyResult& r, Communicator* world, GatheredResult& g) {
  const report::FieldTable<LayerRecord>& fields = layer_fields();
  SEMSKIP_ASSERT(fields.packed_reals() == 0);
  const std::vector<LayerRecord> mine = layer_records_of(r);
  std::vector<int64_t> ints;
  std::vector<double> none;
  for (const LayerRecord& l : mine) fields.pack(l, ints, none);
  at::Tensor sum = matrix(ints, static_cast<int64_t>(fields.packed_ints()));
  if (world && world->size() > 1) sum = world->allreduce(sum, ReduceOp::sum);
  sum = sum.contiguous();
  const size_t L = mine.size();
  g.layers = LayerCounts(static_cast<int64_t>(L));
  g.layer_flops_full.assign(L, 0);
  g.layer_flops_executed.assign(L, 0);
  g.layer_flops_overhead.assign(L, 0);
  for (size_t l = 0; l < L; ++l) {
    LayerRecord s;
    fields.unpack(sum.data_ptr<int64_t>() + l * fields.packed_ints(), nullptr, s);
    g.layers.n_block_run[l] = s.n_block_run, g.layers.n_block_skip[l] = s.n_block_skip;
    g.layers.n_mlp_skip[l] = s.n_mlp_skip, g.layers.n_kv_propagated[l] = s.n_kv_propagated;
    g.layer_flops_full[l] = s.flops_full, g.layer_flops_executed[l] = s.flops_executed;  // s.layer: summed, unused
    g.layer_flops_overhead[l] = s.flops_overhead;
  }
}

}  // namespace

std::vector<LayerRecord> layer_records(const GatheredResult& r) {
  std::vector<LayerRecord> out;
  // A result without per-layer overheads (one assembled by hand) has none: zero.
  SEMSKIP_ASSERT(r.layer_flops_overhead.empty() || r.layer_flops_overhead.size() == r.layers.n_block_run.size());
  for (size_t l = 0; l < r.layers.n_block_run.size(); ++l)
    out.push_back({static_cast<int64_t>(l), r.layers.n_block_run[l], r.layers.n_block_skip[l], r.layers.n_mlp_skip[l],
                   r.layers.n_kv_propagated[l], r.layer_flops_full[l], r.layer_flops_executed[l],
                   r.layer_flops_overhead.empty() ? 0 : r.layer_flops_overhead[l]});
  return out;
}

int64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    // "VmHWM:\t  123456 kB"
    if (line.rfind("VmHWM:", 0) != 0) continue;
    std::istringstream in(line.substr(6));
    int64_t kib = 0;
    std::string unit;
    if (in >> kib >> unit && unit == "kB") return kib * 1024;
    return 0;
  }
  return 0;
}

std::vector<GatheredResult> gather_results(const std::vector<PolicyResult>& mine, Communicator* world,
                                           const RankMemory& memory) {
  std::vector<GatheredResult> out;
  for (const PolicyResult& r : mine) {
    GatheredResult g;
    g.policy = r.policy;
    g.index = r.index;
    gather_ranks(r, world, memory, g);
    gather_requests(r, world, g);
    gather_steps(r, world, g);
    gather_layers(r, world, g);
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace semskip
