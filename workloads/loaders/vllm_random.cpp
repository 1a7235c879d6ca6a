// vllm-random: vLLM's "random" benchmark dataset in meaning — a shared random prefix of
// prefix_len tokens, then input_len ± range_ratio tokens that run through the vocabulary from
// a random offset ((offset + i + j) mod V), and output_len ± range_ratio tokens to generate.
// The ids are used as generated (vLLM decodes and re-tokenizes them, which can change the
// count); drawn from the ordinary tokens only, so no special token lands in a prompt.
#include <cmath>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "workloads/loaders/loader_common.h"
#include "workloads/rng.h"

namespace semskip {

namespace {

constexpr uint64_t kPrefixStream = ~uint64_t{0};

class VllmRandomSource : public RequestSource {
 public:
  VllmRandomSource(const WorkloadSpec& spec, const WorkloadContext& ctx)
      : spec_(spec), ctx_(ctx), tok_(require_tokenizer(spec, ctx)), ids_(ordinary_token_ids(tok_)),
        num_(spec.get_int("num")), seed_(spec.seed()) {
    refuse_trace(spec);
    const int64_t input_len = spec.get_int("input_len"), output_len = spec.get_int("output_len");
    const double r = spec.get_double("range_ratio");
    const int64_t prefix_len = spec.get_int("prefix_len");
    SEMSKIP_THROW_IF_NOT_MSG(num_ >= 0, "workload '{}': num must be >= 0", spec.text());
    SEMSKIP_THROW_IF_NOT_MSG(r >= 0 && r < 1, "workload '{}': range_ratio must be in [0, 1)",
                             spec.text());
    SEMSKIP_THROW_IF_NOT_MSG(input_len >= 0 && output_len >= 0 && prefix_len >= 0,
                             "workload '{}': lengths must be >= 0", spec.text());
    input_lo_ = static_cast<int64_t>(std::floor(static_cast<double>(input_len) * (1 - r)));
    input_hi_ = static_cast<int64_t>(std::floor(static_cast<double>(input_len) * (1 + r)));
    output_lo_ = static_cast<int64_t>(std::floor(static_cast<double>(output_len) * (1 - r)));
    output_hi_ = static_cast<int64_t>(std::floor(static_cast<double>(output_len) * (1 + r)));
    SEMSKIP_THROW_IF_NOT_MSG(input_hi_ + prefix_len >= 1,
                             "workload '{}': prompts would be empty", spec.text());
    Rng rng = Rng::for_stream(seed_, kPrefixStream);
    for (int64_t j = 0; j < prefix_len; ++j) prefix_.push_back(ids_[rng.below(ids_.size())]);
  }

  std::optional<Request> next() override {
    if (i_ >= num_) return std::nullopt;
    const int64_t i = i_++;
    Rng rng = Rng::for_stream(seed_, static_cast<uint64_t>(i));
    const int64_t n_in = rng.between(input_lo_, input_hi_);
    const int64_t n_out = rng.between(output_lo_, output_hi_);
    const uint64_t v = ids_.size();
    const uint64_t offset = rng.below(v);
    Request r;
    r.prompt_tokens = prefix_;
    for (int64_t j = 0; j < n_in; ++j)
      r.prompt_tokens.push_back(ids_[(offset + static_cast<uint64_t>(i + j)) % v]);
    r.prompt_text = tok_.decode(r.prompt_tokens);
    r.n_tokens_output = n_out;
    r.source_file = "vllm-random";
    r.source_id = std::to_string(i);
    return r;
  }

 private:
  WorkloadSpec spec_;
  WorkloadContext ctx_;
  const Tokenizer& tok_;
  std::vector<int32_t> ids_;     // the ordinary token ids drawn from
  std::vector<int32_t> prefix_;  // [prefix_len], shared by every prompt
  int64_t num_;
  uint64_t seed_;
  int64_t input_lo_ = 0, input_hi_ = 0, output_lo_ = 0, output_hi_ = 0;
  int64_t i_ = 0;
};

}  // namespace

std::unique_ptr<RequestSource> open_vllm_random(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                                LoadCounters&) {
  return std::make_unique<VllmRandomSource>(spec, ctx);
}

}  // namespace semskip
