#include "workloads/loaders/conversation.h"

#include "workloads/loaders/loader_common.h"

namespace semskip {

namespace {

Request make_request(const Conversation& conv, std::vector<ChatMessage> history,
                     const ChatMessage& answer, ChatTemplate tmpl, const WorkloadSpec& spec,
                     const WorkloadContext& ctx, const std::string& source_id) {
  Request r;
  r.source_id = source_id;
  r.prompt_text = render_chat(history, tmpl, /*add_generation_prompt=*/true);
  const std::string where = conv.source_file + ":" + std::to_string(conv.source_line);
  r.prompt_tokens = encode_if(ctx, r.prompt_text, where);
  r.reference_text = answer.content;
  r.reference_tokens = encode_if(ctx, r.reference_text, where);
  set_output_len(spec, r);
  r.document = "conversation:" + where;
  r.source_file = conv.source_file;
  r.source_line = conv.source_line;
  if (conv.arrival_s) r.arrival_s = *conv.arrival_s;
  return r;
}

}  // namespace

std::vector<Request> conversation_requests(const Conversation& conv, ChatTemplate tmpl,
                                           const WorkloadSpec& spec, const WorkloadContext& ctx) {
  const std::vector<ChatMessage>& m = conv.messages;
  std::vector<Request> out;
  if (spec.get("turns") == "first") {
    std::vector<ChatMessage> history;
    for (size_t k = 0; k < m.size(); ++k) {
      if (m[k].role == ChatRole::system) {
        history.push_back(m[k]);
        continue;
      }
      if (m[k].role != ChatRole::user) continue;  // an answer before any question
      history.push_back(m[k]);
      if (k + 1 < m.size() && m[k + 1].role == ChatRole::assistant)
        out.push_back(make_request(conv, history, m[k + 1], tmpl, spec, ctx, conv.id));
      break;
    }
    return out;
  }
  int answer_index = 0;
  for (size_t k = 1; k < m.size(); ++k) {
    if (m[k].role != ChatRole::assistant || m[k - 1].role != ChatRole::user) continue;
    std::vector<ChatMessage> history(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(k));
    const std::string sid = conv.id.empty() ? std::string() : conv.id + "/" + std::to_string(answer_index);
    out.push_back(make_request(conv, std::move(history), m[k], tmpl, spec, ctx, sid));
    ++answer_index;
  }
  return out;
}

}  // namespace semskip
