// sharegpt: the ShareGPT JSON layout as vLLM's serving benchmark reads it — a top-level array
// of {"id", "conversations": [{"from": "human"|"gpt"|"system", "value"}]} — streamed element
// by element.
#include <deque>

#include "core/error.h"
#include "workloads/json_array_reader.h"
#include "workloads/json_record.h"
#include "workloads/loaders/conversation.h"
#include "workloads/loaders/loader_common.h"

namespace semskip {

namespace {

// ShareGPT dumps name the speakers in several ways; these are the ones seen in the wild.
ChatRole sharegpt_role(const std::string& from, const std::string& where) {
  if (from == "human" || from == "user") return ChatRole::user;
  if (from == "gpt" || from == "assistant" || from == "chatgpt" || from == "bard" || from == "bing")
    return ChatRole::assistant;
  if (from == "system") return ChatRole::system;
  SEMSKIP_THROW_MSG("{}: unknown speaker \"from\": \"{}\" (expected human, gpt or system)", where,
                    from);
}

class ShareGptSource : public RequestSource {
 public:
  ShareGptSource(const WorkloadSpec& spec, const WorkloadContext& ctx, LoadCounters& counters)
      : spec_(spec), ctx_(ctx), counters_(counters), reader_(spec.path()),
        tmpl_(resolve_chat_template(spec, ctx)), trace_(spec.trace_field()) {}

  std::optional<Request> next() override {
    while (pending_.empty()) {
      std::string text;
      if (!reader_.next(text)) return std::nullopt;
      const std::string where = reader_.path() + ":" + std::to_string(reader_.element_line());
      Conversation conv;
      try {
        conv = parse(text, where);
      } catch (const Error& e) {
        skip_or_rethrow(spec_.on_bad_line(), counters_, e.what());
        continue;
      }
      std::vector<Request> reqs = conversation_requests(conv, tmpl_, spec_, ctx_);
      if (reqs.empty()) ++counters_.n_filtered;  // fewer than a question and its answer
      for (Request& r : reqs) pending_.push_back(std::move(r));
    }
    Request r = std::move(pending_.front());
    pending_.pop_front();
    return r;
  }

 private:
  Conversation parse(const std::string& text, const std::string& where) const {
    nlohmann::json obj = parse_json_record(text, where);
    SEMSKIP_THROW_IF_NOT_MSG(obj.is_object(), "{}: a ShareGPT element must be an object, found {}",
                             where, obj.type_name());
    Conversation conv;
    conv.id = json_optional_id(obj, "id", where).value_or("");
    conv.source_file = reader_.path();
    conv.source_line = reader_.element_line();
    if (trace_) conv.arrival_s = json_seconds(obj, *trace_, where);
    auto it = obj.find("conversations");
    SEMSKIP_THROW_IF_NOT_MSG(it != obj.end(), "{}: missing field 'conversations'", where);
    SEMSKIP_THROW_IF_NOT_MSG(it->is_array(), "{}: 'conversations' must be an array, found {}",
                             where, it->type_name());
    for (const nlohmann::json& turn : *it) {
      ChatMessage m;
      m.role = sharegpt_role(json_string(turn, "from", where), where);
      m.content = json_string(turn, "value", where);
      conv.messages.push_back(std::move(m));
    }
    return conv;
  }

  WorkloadSpec spec_;
  WorkloadContext ctx_;
  LoadCounters& counters_;
  JsonArrayReader reader_;
  ChatTemplate tmpl_;
  std::optional<std::string> trace_;
  std::deque<Request> pending_;  // requests of a multi-turn conversation not yet returned
};

}  // namespace

std::unique_ptr<RequestSource> open_sharegpt(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                             LoadCounters& counters) {
  return std::make_unique<ShareGptSource>(spec, ctx, counters);
}

}  // namespace semskip
