#pragma once
// Pieces every loader shares: the factories of each kind, the chat template and tokenizer
// lookups, output lengths.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "workloads/chat_template.h"
#include "workloads/workload.h"

namespace semskip {

// One factory per kind (each in its own file).
std::unique_ptr<RequestSource> open_sharegpt(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);
std::unique_ptr<RequestSource> open_lmsys(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);
std::unique_ptr<RequestSource> open_pairs(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);
std::unique_ptr<RequestSource> open_text(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);
std::unique_ptr<RequestSource> open_jsonl(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);
std::unique_ptr<RequestSource> open_vllm_random(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);
std::unique_ptr<RequestSource> open_vllm_prefix_repetition(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);
std::unique_ptr<RequestSource> open_vllm_sonnet(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);
std::unique_ptr<RequestSource> open_synthetic(const WorkloadSpec&, const WorkloadContext&, LoadCounters&);

// The spec's chat option, "auto" resolved against ctx.model_type.
ChatTemplate resolve_chat_template(const WorkloadSpec& spec, const WorkloadContext& ctx);
// The tokenizer; semskip::Error naming the kind when the context has none.
const Tokenizer& require_tokenizer(const WorkloadSpec& spec, const WorkloadContext& ctx);
// Tokenizes when the context has a tokenizer, else returns no tokens (text-only workloads).
// A refusal (text that is not valid UTF-8) names `where`, the file and line the text is from.
std::vector<int32_t> encode_if(const WorkloadContext& ctx, const std::string& text, const std::string& where);
// tok.encode(text), its refusal naming `where`.
std::vector<int32_t> encode_from(const Tokenizer& tok, const std::string& text, const std::string& where);
// Token ids a generator may draw: every id that is not a special token.
std::vector<int32_t> ordinary_token_ids(const Tokenizer& tok);
// Sets n_tokens_output from the spec's output_len ("reference": the reference's length).
void set_output_len(const WorkloadSpec& spec, Request& r);
// Refuses arrivals=trace:<field> for kinds whose records have no fields.
void refuse_trace(const WorkloadSpec& spec);

}  // namespace semskip
