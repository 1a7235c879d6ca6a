#include "engine/step_batch.h"

#include <algorithm>

#include "core/error.h"

namespace semskip {

StepBatch make_batch(const std::vector<Request>& requests, size_t begin, size_t end, at::Device device) {
  StepBatch sb;
  int64_t S = 0;
  for (size_t i = begin; i < end; ++i) S = std::max(S, requests[i].n_tokens_prompt());
  const int64_t B = static_cast<int64_t>(end - begin);
  at::Tensor ids = at::zeros({B, S}, at::kLong);
  at::Tensor valid = at::zeros({B, S}, at::kBool);
  for (size_t i = begin; i < end; ++i) {
    const Request& r = requests[i];
    SEMSKIP_THROW_IF_NOT_MSG(r.n_tokens_prompt() > 0, "request {} ({}) has an empty prompt", r.id, r.where());
    const int64_t b = static_cast<int64_t>(i - begin), n = r.n_tokens_prompt(), pad = S - n;
    std::vector<int64_t> toks(r.prompt_tokens.begin(), r.prompt_tokens.end());
    ids[b].slice(0, pad, S).copy_(at::tensor(toks, at::kLong));
    valid[b].slice(0, pad, S).fill_(true);
    sb.rows.push_back(b);
    sb.requests.push_back(&r);
  }
  sb.ids = ids.to(device);
  sb.valid = valid.to(device);
  return sb;
}

StepBatch empty_batch(at::Device device) {
  // One column, so that "the last position" of a step exists even without sequences.
  StepBatch sb;
  sb.ids = at::zeros({0, 1}, at::TensorOptions().dtype(at::kLong).device(device));
  sb.valid = at::zeros({0, 1}, at::TensorOptions().dtype(at::kBool).device(device));
  return sb;
}

}  // namespace semskip
