#pragma once
// Expert parallelism for MoE layers (docs/architecture.md §4): the routed experts of every MoeBlock are
// split over the ranks of an EP group (ExpertPartition). Each rank routes its own tokens;
// the (token row, expert) pairs travel to the experts' owners through an all-to-all, the
// owners run MoeBlock::experts_forward on what they received, the outputs come back through
// a second all-to-all and are combined with the routing weights where the tokens live. The
// shared expert (Qwen2-MoE) is computed locally. The result equals MoeBlock::forward_routed
// on one process: the same rows meet the same expert weights and are combined in the same
// order.
//
// Every call is collective over the group: all its ranks call it for the same layer, also
// with zero tokens. Tokens that do not run the routed experts (skip hits of a target=mlp or
// target=routed policy) are left out with forward_rows and never enter the all-to-all; under
// target=routed they still run the shared expert, on their own rank.
//
// A whole model: ForwardOptions::moe_executor = &expert_parallel (GenerateOptions likewise).

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "comm/communicator.h"
#include "comm/expert_partition.h"
#include "metrics/flop_counter.h"
#include "model/layers/moe_block.h"
#include "model/moe_executor.h"

namespace semskip {

// What this rank did, summed over calls (time is wall-clock, host clock).
struct EpStats {
  int64_t n_calls = 0;          // MoE layer executions
  int64_t n_pairs_routed = 0;   // (token, expert) pairs this rank's tokens produced
  int64_t n_pairs_sent = 0;     // of them, to experts on other ranks
  int64_t n_pairs_run = 0;      // pairs this rank's experts computed (its expert FLOPs)
  int64_t n_pairs_recv = 0;     // of them, from other ranks
  int64_t t_alltoall_ns = 0;    // the three all-to-alls of each call: counts, rows out, rows back
  int64_t t_experts_ns = 0;     // experts_forward on the received rows
};

// The dispatch cost of one MoE layer on this rank, summed over its calls. Rows are (token,
// expert) pairs of the tokens that run the layer (skip hits never enter), `row_bytes` = hidden ×
// the compute dtype's size. Only rows that cross to another rank count as bytes.
struct EpLayerStats {
  int64_t n_calls = 0;
  int64_t n_rows_routed = 0;    // pairs this rank's tokens produced
  int64_t n_rows_sent = 0;      // of them, to experts on other ranks
  int64_t n_rows_recv = 0;      // pairs from other ranks that this rank's experts ran
  int64_t bytes_dispatch = 0;   // n_rows_sent · row_bytes: rows out to the owners
  int64_t bytes_combine = 0;    // n_rows_recv · row_bytes: their outputs sent back
  int64_t t_alltoall_ns = 0;    // the three all-to-alls (counts, rows out, rows back)
};

class ExpertParallel final : public MoeExecutor {
 public:
  // `group`: the ranks of this EP group; it must outlive this object.
  explicit ExpertParallel(Communicator& group);

  Communicator& group() const { return group_; }
  ExpertPartition partition(int64_t n_experts) const { return ExpertPartition(n_experts, group_.size()); }

  // MoeBlock::routed_term across the group: x [N, d] compute dtype (N may be 0), `routing` of
  // its rows -> the routed term [N, d] on x's device. Expert FLOPs go to `flops` on the rank
  // that runs them. Transformer::forward calls it for every MoE layer when
  // ForwardOptions::moe_executor points here (and adds the shared expert itself).
  at::Tensor routed_term(const MoeBlock& moe, const at::Tensor& x, const Routing& routing, FlopCounter* flops,
                         int layer) override;
  // MoeBlock::forward_routed across the group: routed_term plus the shared expert, computed
  // here (its FLOPs to this rank).
  at::Tensor forward_routed(const MoeBlock& moe, const at::Tensor& x, const Routing& routing, FlopCounter* flops,
                            int layer);
  // MoeBlock::forward across the group: x [..., d] -> [..., d]; routing returned when asked.
  at::Tensor forward(const MoeBlock& moe, const at::Tensor& x, FlopCounter* flops = nullptr,
                     int layer = FlopCounter::kNoLayer, Routing* routing_out = nullptr);
  // Only `rows` of x [N, d] run the MoE — int64 [n] row indices or a bool [N] mask; the other
  // rows are not routed, not sent, and are zero in the output [N, d].
  at::Tensor forward_rows(const MoeBlock& moe, const at::Tensor& x, const at::Tensor& rows,
                          FlopCounter* flops = nullptr, int layer = FlopCounter::kNoLayer);

  const EpStats& stats() const { return stats_; }
  // By layer index (the `layer` of each call; calls without one are not kept here): empty
  // entries for layers that never ran expert-parallel.
  const std::vector<EpLayerStats>& layer_stats() const { return by_layer_; }
  // layer_stats() as int64 [n_layers, kEpLayerFields] on the CPU, the fields in declaration
  // order (n_calls … t_alltoall_ns), zero rows for layers that did not run: what the ranks
  // allgather for the report's /per_rank_layer.
  static constexpr int64_t kEpLayerFields = 7;
  at::Tensor layer_stats_tensor(int64_t n_layers) const;
  void reset_stats() {
    stats_ = {};
    by_layer_.clear();
  }

 private:
  Communicator& group_;
  EpStats stats_;
  std::vector<EpLayerStats> by_layer_;
};

}  // namespace semskip
