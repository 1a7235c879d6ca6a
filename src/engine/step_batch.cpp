#include "engine/step_batch.h"

#include "core/error.h"
#include "model/generation.h"

namespace semskip {

StepBatch make_batch(const std::vector<Request>& requests, size_t begin, size_t end, at::Device device) {
  StepBatch sb;
  std::vector<std::vector<int64_t>> prompts;
  for (size_t i = begin; i < end; ++i) {
    const Request& r = requests[i];
    SEMSKIP_THROW_IF_NOT_MSG(r.n_tokens_prompt() > 0, "request {} ({}) has an empty prompt", r.id, r.where());
    prompts.emplace_back(r.prompt_tokens.begin(), r.prompt_tokens.end());
    sb.rows.push_back(static_cast<int64_t>(i - begin));
    sb.requests.push_back(&r);
  }
  // Greedy generation's left padding (left_pad); pad ids are 0 (never attended to).
  PaddedBatch pb = left_pad(prompts, 0, device);
  sb.ids = std::move(pb.ids);
  sb.valid = std::move(pb.valid);
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
