// vllm-prefix-repetition: vLLM's "prefix_repetition" benchmark dataset in meaning —
// num_prefixes random prefixes of prefix_len tokens, each followed in num/num_prefixes prompts
// by a random suffix of suffix_len tokens; the prompts are shuffled. Token ids are used as
// generated (exact lengths), drawn from the ordinary tokens.
#include <numeric>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "workloads/loaders/loader_common.h"
#include "workloads/rng.h"

namespace semskip {

namespace {

// Streams of the seed: one for the shuffle, one per prefix; suffixes use the request index.
constexpr uint64_t kShuffleStream = ~uint64_t{0};
constexpr uint64_t kPrefixStreamBase = uint64_t{1} << 62;

class PrefixRepetitionSource : public RequestSource {
 public:
  PrefixRepetitionSource(const WorkloadSpec& spec, const WorkloadContext& ctx)
      : spec_(spec), ctx_(ctx), tok_(require_tokenizer(spec, ctx)), ids_(ordinary_token_ids(tok_)),
        seed_(spec.seed()), suffix_len_(spec.get_int("suffix_len")),
        output_len_(spec.get_int("output_len")) {
    refuse_trace(spec);
    const int64_t num = spec.get_int("num"), n_prefixes = spec.get_int("num_prefixes");
    const int64_t prefix_len = spec.get_int("prefix_len");
    SEMSKIP_THROW_IF_NOT_MSG(n_prefixes >= 1, "workload '{}': num_prefixes must be >= 1",
                             spec.text());
    SEMSKIP_THROW_IF_NOT_MSG(num >= n_prefixes,
                             "workload '{}': num ({}) must be at least num_prefixes ({})",
                             spec.text(), num, n_prefixes);
    SEMSKIP_THROW_IF_NOT_MSG(prefix_len >= 0 && suffix_len_ >= 0 && prefix_len + suffix_len_ >= 1 &&
                                 output_len_ >= 0,
                             "workload '{}': lengths must be >= 0 and prompts non-empty",
                             spec.text());
    per_prefix_ = num / n_prefixes;
    for (int64_t p = 0; p < n_prefixes; ++p) {
      Rng rng = Rng::for_stream(seed_, kPrefixStreamBase + static_cast<uint64_t>(p));
      std::vector<int32_t> prefix;
      for (int64_t j = 0; j < prefix_len; ++j) prefix.push_back(ids_[rng.below(ids_.size())]);
      prefixes_.push_back(std::move(prefix));
    }
    order_.resize(static_cast<size_t>(per_prefix_ * n_prefixes));
    std::iota(order_.begin(), order_.end(), 0);
    Rng rng = Rng::for_stream(seed_, kShuffleStream);
    for (size_t k = order_.size(); k > 1; --k) std::swap(order_[k - 1], order_[rng.below(k)]);
  }

  std::optional<Request> next() override {
    if (k_ >= order_.size()) return std::nullopt;
    const int64_t idx = order_[k_++];
    Rng rng = Rng::for_stream(seed_, static_cast<uint64_t>(idx));
    Request r;
    r.prompt_tokens = prefixes_[static_cast<size_t>(idx / per_prefix_)];
    for (int64_t j = 0; j < suffix_len_; ++j) r.prompt_tokens.push_back(ids_[rng.below(ids_.size())]);
    r.prompt_text = tok_.decode(r.prompt_tokens);
    r.n_tokens_output = output_len_;
    r.source_file = "vllm-prefix-repetition";
    r.source_id = "prefix" + std::to_string(idx / per_prefix_) + "/" + std::to_string(idx % per_prefix_);
    return r;
  }

 private:
  WorkloadSpec spec_;
  WorkloadContext ctx_;
  const Tokenizer& tok_;
  std::vector<int32_t> ids_;
  uint64_t seed_;
  int64_t suffix_len_, output_len_;
  int64_t per_prefix_ = 0;
  std::vector<std::vector<int32_t>> prefixes_;  // [num_prefixes][prefix_len]
  std::vector<int64_t> order_;                  // shuffled request indices
  size_t k_ = 0;
};

}  // namespace

std::unique_ptr<RequestSource> open_vllm_prefix_repetition(const WorkloadSpec& spec,
                                                           const WorkloadContext& ctx,
                                                           LoadCounters&) {
  return std::make_unique<PrefixRepetitionSource>(spec, ctx);
}

}  // namespace semskip
