#include "engine/run_requests.h"

#include <memory>

#include "core/error.h"
#include "comm/communicator.h"

namespace semskip {

RunRequests load_run_requests(const WorkloadSpec& spec, const WorkloadContext& ctx, int64_t n_calib,
                              int64_t max_requests, int64_t max_new_tokens, const ShardChoice& choice,
                              Communicator* world) {
  SEMSKIP_ASSERT(choice.n_shards >= 1 && choice.shard >= 0 && choice.shard < choice.n_shards);
  RunRequests out;
  std::unique_ptr<Workload> w = Workload::open(spec, ctx);
  while (static_cast<int64_t>(out.calibration.size()) < n_calib) {
    std::optional<Request> r = w->next();
    if (!r) break;
    out.calibration.push_back(std::move(*r));
  }
  std::vector<Request> all;
  while (max_requests == 0 || static_cast<int64_t>(all.size()) < max_requests) {
    std::optional<Request> r = w->next();
    if (!r) break;
    all.push_back(std::move(*r));
  }
  out.counters = w->counters();
  out.n_evaluated_total = static_cast<int64_t>(all.size());
  if (choice.n_shards == 1 || all.empty()) {
    out.evaluated = std::move(all);
    return out;
  }

  std::vector<int64_t> sizes;
  for (const Request& r : all) sizes.push_back(r.n_tokens_prompt() + max_new_tokens);
  at::Tensor decided;  // int64 [2, N]: rank 0's request sizes and the shard of each request
  const bool root = !world || world->rank() == 0;
  if (root) {
    const std::vector<int32_t> ranks = assign_ranks(sizes, choice.n_shards, choice.strategy, choice.seed);
    std::vector<int64_t> rows(sizes);
    rows.insert(rows.end(), ranks.begin(), ranks.end());
    decided = at::tensor(rows, at::kLong).view({2, static_cast<int64_t>(sizes.size())});
  }
  if (world && world->size() > 1) decided = world->broadcast(decided, 0);
  decided = decided.contiguous();
  const int64_t n = decided.size(1);
  SEMSKIP_THROW_IF_NOT_MSG(n == static_cast<int64_t>(all.size()),
                           "workload '{}': this rank reads {} evaluated requests, rank 0 reads {}; every rank must "
                           "read the same workload", spec.text(), all.size(), n);
  const int64_t* size0 = decided.data_ptr<int64_t>();
  const int64_t* shard_of = size0 + n;
  for (int64_t i = 0; i < n; ++i) {
    const size_t k = static_cast<size_t>(i);
    SEMSKIP_THROW_IF_NOT_MSG(size0[i] == sizes[k],
                             "workload '{}': request {} has {} tokens on this rank and {} on rank 0; every rank "
                             "must read the same workload", spec.text(), all[k].id, sizes[k], size0[i]);
    if (shard_of[i] == choice.shard) out.evaluated.push_back(std::move(all[k]));
  }
  return out;
}

}  // namespace semskip
