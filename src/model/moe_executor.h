#pragma once
// Where the routed experts of a MoE layer run when not all on this process: expert
// parallelism (src/comm, ExpertParallel) implements it. DecoderLayer::mlp_block calls it in
// place of MoeBlock::routed_term when the forward's LayerContext carries one, and adds the
// shared expert itself (it is local, and target=routed runs it on rows the routed term skips).

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/layers/moe_block.h"

namespace semskip {

class MoeExecutor {
 public:
  virtual ~MoeExecutor() = default;
  // MoeBlock::routed_term's contract: x [N, d], `routing` of its rows -> the routed term [N, d]
  // (no shared expert).
  virtual at::Tensor routed_term(const MoeBlock& moe, const at::Tensor& x, const Routing& routing,
                                 FlopCounter* flops, int layer) = 0;
};

}  // namespace semskip
