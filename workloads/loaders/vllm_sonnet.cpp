// vllm-sonnet: vLLM's "sonnet" benchmark dataset in meaning — "Pick as many lines as you can
// from these poem lines:\n", then the poem's first lines as a prefix shared by every prompt,
// then lines drawn at random (with replacement); line counts chosen from the average line
// length so that the chat-formatted prompt has about input_len tokens, its prefix about
// prefix_len. The shipped poem is KJV Psalms (public domain; workloads/samples/README.md).
#include <cmath>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "workloads/line_reader.h"
#include "workloads/loaders/loader_common.h"
#include "workloads/rng.h"

namespace semskip {

namespace {

constexpr const char* kBasePrompt = "Pick as many lines as you can from these poem lines:\n";

class SonnetSource : public RequestSource {
 public:
  SonnetSource(const WorkloadSpec& spec, const WorkloadContext& ctx)
      : spec_(spec), ctx_(ctx), tok_(require_tokenizer(spec, ctx)),
        tmpl_(resolve_chat_template(spec, ctx)), num_(spec.get_int("num")), seed_(spec.seed()),
        output_len_(spec.get_int("output_len")) {
    refuse_trace(spec);
    LineReader reader(spec.path());
    std::string line;
    int64_t n_tokens = 0;
    while (reader.next(line)) {
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      lines_.push_back(line + "\n");
      n_tokens += static_cast<int64_t>(
          encode_from(tok_, lines_.back(), reader.path() + ":" + std::to_string(reader.line_number())).size());
    }
    SEMSKIP_THROW_IF_NOT_MSG(!lines_.empty(), "{}: the poem has no lines", spec.path());
    const double avg_len = static_cast<double>(n_tokens) / static_cast<double>(lines_.size());

    const int64_t input_len = spec.get_int("input_len"), prefix_len = spec.get_int("prefix_len");
    const int64_t base_offset = static_cast<int64_t>(
        tok_.encode(render_chat({{ChatRole::user, kBasePrompt}}, tmpl_, true)).size());
    SEMSKIP_THROW_IF_NOT_MSG(input_len > base_offset,
                             "workload '{}': input_len must be higher than the base prompt's "
                             "length ({} tokens)",
                             spec.text(), base_offset);
    SEMSKIP_THROW_IF_NOT_MSG(num_ >= 0 && output_len_ >= 0, "workload '{}': num and output_len "
                             "must be >= 0", spec.text());
    // Python's round() (ties to even), as the reference computes the line counts.
    n_input_lines_ = static_cast<int64_t>(std::nearbyint(static_cast<double>(input_len - base_offset) / avg_len));
    n_prefix_lines_ = std::max<int64_t>(
        0, static_cast<int64_t>(std::nearbyint(static_cast<double>(prefix_len - base_offset) / avg_len)));
    SEMSKIP_THROW_IF_NOT_MSG(n_prefix_lines_ <= n_input_lines_,
                             "workload '{}': prefix_len ({}) must not exceed input_len ({})",
                             spec.text(), prefix_len, input_len);
    SEMSKIP_THROW_IF_NOT_MSG(n_prefix_lines_ <= static_cast<int64_t>(lines_.size()),
                             "workload '{}': the prefix needs {} lines, the poem has {}",
                             spec.text(), n_prefix_lines_, lines_.size());
    for (int64_t k = 0; k < n_prefix_lines_; ++k) prefix_ += lines_[static_cast<size_t>(k)];
  }

  std::optional<Request> next() override {
    if (i_ >= num_) return std::nullopt;
    const int64_t i = i_++;
    Rng rng = Rng::for_stream(seed_, static_cast<uint64_t>(i));
    std::string content = std::string(kBasePrompt) + prefix_;
    for (int64_t k = n_prefix_lines_; k < n_input_lines_; ++k) content += lines_[rng.below(lines_.size())];
    Request r;
    r.prompt_text = render_chat({{ChatRole::user, content}}, tmpl_, true);
    r.prompt_tokens = tok_.encode(r.prompt_text);
    r.n_tokens_output = output_len_;
    r.source_file = spec_.path();
    r.source_id = std::to_string(i);
    return r;
  }

 private:
  WorkloadSpec spec_;
  WorkloadContext ctx_;
  const Tokenizer& tok_;
  ChatTemplate tmpl_;
  int64_t num_;
  uint64_t seed_;
  int64_t output_len_;
  std::vector<std::string> lines_;  // the poem's non-blank lines, each ending in "\n"
  std::string prefix_;
  int64_t n_input_lines_ = 0, n_prefix_lines_ = 0;
  int64_t i_ = 0;
};

}  // namespace

std::unique_ptr<RequestSource> open_vllm_sonnet(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                                LoadCounters&) {
  return std::make_unique<SonnetSource>(spec, ctx);
}

}  // namespace semskip
