#pragma once
// A chat conversation read from a dataset (ShareGPT, LMSYS) and the requests made from it.

#include <optional>
#include <string>
#include <vector>

#include "workloads/chat_template.h"
#include "workloads/request.h"
#include "workloads/workload.h"

namespace semskip {

struct Conversation {
  std::string id;
  std::vector<ChatMessage> messages;
  std::string source_file;
  int64_t source_line = 0;
  std::optional<double> arrival_s;  // from the trace field, when arrivals=trace:<field>
};

// turns=first: the first user turn (after any system turns) as prompt and the assistant turn
// right after it as reference — none when it is not followed by one.
// turns=all: one request per assistant turn that follows a user turn, the whole conversation
// before it (earlier answers included) as prompt.
// Prompts are rendered with `tmpl` and an open assistant turn; references are tokenized as is.
std::vector<Request> conversation_requests(const Conversation& conv, ChatTemplate tmpl,
                                           const WorkloadSpec& spec, const WorkloadContext& ctx);

}  // namespace semskip
