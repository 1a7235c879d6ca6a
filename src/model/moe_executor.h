#pragma once
// Where the routed experts of a MoE layer run when not all on this process: expert
// parallelism (src/comm, ExpertParallel) implements it. DecoderLayer::mlp_block calls it in
// place of MoeBlock::forward_routed when the forward's LayerContext carries one.

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/layers/moe_block.h"

namespace semskip {

class MoeExecutor {
 public:
  virtual ~MoeExecutor() = default;
  // MoeBlock::forward_routed's contract: x [N, d], `routing` of its rows -> [N, d].
  virtual at::Tensor forward_routed(const MoeBlock& moe, const at::Tensor& x, const Routing& routing,
                                    FlopCounter* flops, int layer) = 0;
};

}  // namespace semskip
