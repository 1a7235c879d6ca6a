#include "workloads/loaders/loader_common.h"

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace semskip {

std::unique_ptr<RequestSource> open_request_source(const WorkloadSpec& spec,
                                                   const WorkloadContext& ctx,
                                                   LoadCounters& counters) {
  using Factory = std::unique_ptr<RequestSource> (*)(const WorkloadSpec&, const WorkloadContext&,
                                                      LoadCounters&);
  static const std::pair<const char*, Factory> kFactories[] = {
      {"sharegpt", open_sharegpt},
      {"lmsys", open_lmsys},
      {"pairs", open_pairs},
      {"text", open_text},
      {"jsonl", open_jsonl},
      {"vllm-random", open_vllm_random},
      {"vllm-prefix-repetition", open_vllm_prefix_repetition},
      {"vllm-sonnet", open_vllm_sonnet},
      {"synthetic", open_synthetic},
  };
  for (const auto& [name, factory] : kFactories)
    if (spec.kind() == name) return factory(spec, ctx, counters);
  SEMSKIP_THROW_MSG("workload '{}': kind '{}' has no loader", spec.text(), spec.kind());
}

ChatTemplate resolve_chat_template(const WorkloadSpec& spec, const WorkloadContext& ctx) {
  const std::string& name = spec.get("chat");
  if (name == "auto") return chat_template_for_model_type(ctx.model_type);
  return parse_chat_template(name, "workload option chat");
}

const Tokenizer& require_tokenizer(const WorkloadSpec& spec, const WorkloadContext& ctx) {
  SEMSKIP_THROW_IF_NOT_MSG(ctx.tokenizer != nullptr,
                           "workload '{}': kind '{}' works in tokens and needs a tokenizer",
                           spec.text(), spec.kind());
  return *ctx.tokenizer;
}

std::vector<int32_t> encode_from(const Tokenizer& tok, const std::string& text, const std::string& where) {
  try {
    return tok.encode(text);
  } catch (const Error& e) {
    SEMSKIP_THROW_MSG("{}: {}", where, e.what());
  }
}

std::vector<int32_t> encode_if(const WorkloadContext& ctx, const std::string& text, const std::string& where) {
  if (!ctx.tokenizer) return {};
  return encode_from(*ctx.tokenizer, text, where);
}

std::vector<int32_t> ordinary_token_ids(const Tokenizer& tok) {
  std::vector<int32_t> ids;
  const int32_t n = tok.vocab_size();
  ids.reserve(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id)
    if (!tok.is_special(id)) ids.push_back(id);
  SEMSKIP_THROW_IF_NOT_MSG(!ids.empty(), "tokenizer has no ordinary tokens");
  return ids;
}

void set_output_len(const WorkloadSpec& spec, Request& r) {
  std::optional<int64_t> n = spec.output_len();
  r.n_tokens_output = n ? *n : static_cast<int64_t>(r.reference_tokens.size());
}

void refuse_trace(const WorkloadSpec& spec) {
  SEMSKIP_THROW_IF_NOT_MSG(!spec.trace_field(),
                           "workload '{}': arrivals=trace:<field> reads a field of each JSON "
                           "record; kind '{}' has none (use poisson:<rate>)",
                           spec.text(), spec.kind());
}

}  // namespace semskip
