#pragma once
// A micro-batch step's input: requests left-padded into [B, S] token ids. A rank with no
// request left in a lockstep run takes an empty step (B = 0) and still joins the collectives.

#include <cstddef>
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "workloads/request.h"

namespace semskip {

struct StepBatch {
  at::Tensor ids;    // int64 [B, S]
  at::Tensor valid;  // bool [B, S]
  std::vector<int64_t> rows;               // [B]: 0..B−1
  std::vector<const Request*> requests;    // [B]
};

// Requests [begin, end) left-padded into one step, on `device`. semskip::Error naming the
// request when a prompt is empty.
StepBatch make_batch(const std::vector<Request>& requests, size_t begin, size_t end, at::Device device);

// A step of no sequences: ids int64 [0, 1], valid bool [0, 1].
StepBatch empty_batch(at::Device device);

}  // namespace semskip
