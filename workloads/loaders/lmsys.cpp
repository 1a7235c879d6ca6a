// lmsys: LMSYS-Chat-1M exported as JSONL, one conversation a line:
// {"conversation_id", "model", "conversation": [{"role", "content"}], "turn", "language", ...},
// with filters on language, model and turn count.
#include <deque>

#include "core/error.h"
#include "workloads/json_record.h"
#include "workloads/line_reader.h"
#include "workloads/loaders/conversation.h"
#include "workloads/loaders/loader_common.h"

namespace semskip {

namespace {

ChatRole lmsys_role(const std::string& role, const std::string& where) {
  if (role == "user") return ChatRole::user;
  if (role == "assistant") return ChatRole::assistant;
  if (role == "system") return ChatRole::system;
  SEMSKIP_THROW_MSG("{}: unknown role \"{}\" (expected user, assistant or system)", where, role);
}

class LmsysSource : public RequestSource {
 public:
  LmsysSource(const WorkloadSpec& spec, const WorkloadContext& ctx, LoadCounters& counters)
      : spec_(spec), ctx_(ctx), counters_(counters), reader_(spec.path()),
        tmpl_(resolve_chat_template(spec, ctx)), trace_(spec.trace_field()),
        language_(spec.get("language")), model_(spec.get("model")),
        min_turns_(spec.get_int("min_turns")), max_turns_(spec.get_int("max_turns")) {}

  std::optional<Request> next() override {
    std::string line;
    while (pending_.empty()) {
      if (!reader_.next(line)) return std::nullopt;
      if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
      const std::string where = reader_.path() + ":" + std::to_string(reader_.line_number());
      Conversation conv;
      bool keep = false;
      try {
        keep = parse(line, where, conv);
      } catch (const Error& e) {
        skip_or_rethrow(spec_.on_bad_line(), counters_, e.what());
        continue;
      }
      std::vector<Request> reqs;
      if (keep) reqs = conversation_requests(conv, tmpl_, spec_, ctx_);
      if (reqs.empty()) ++counters_.n_filtered;
      for (Request& r : reqs) pending_.push_back(std::move(r));
    }
    Request r = std::move(pending_.front());
    pending_.pop_front();
    return r;
  }

 private:
  // False when the record is well formed but filtered out.
  bool parse(const std::string& line, const std::string& where, Conversation& conv) const {
    nlohmann::json obj = parse_json_record(line, where);
    SEMSKIP_THROW_IF_NOT_MSG(obj.is_object(), "{}: expected a JSON object, found {}", where,
                             obj.type_name());
    conv.id = json_optional_id(obj, "conversation_id", where).value_or("");
    conv.source_file = reader_.path();
    conv.source_line = reader_.line_number();
    auto it = obj.find("conversation");
    SEMSKIP_THROW_IF_NOT_MSG(it != obj.end(), "{}: missing field 'conversation'", where);
    SEMSKIP_THROW_IF_NOT_MSG(it->is_array(), "{}: 'conversation' must be an array, found {}", where,
                             it->type_name());
    int64_t n_user = 0;
    for (const nlohmann::json& turn : *it) {
      ChatMessage m;
      m.role = lmsys_role(json_string(turn, "role", where), where);
      m.content = json_string(turn, "content", where);
      n_user += m.role == ChatRole::user;
      conv.messages.push_back(std::move(m));
    }
    // "turn" counts user–assistant exchanges; derived from the messages when absent.
    int64_t turns = n_user;
    auto t = obj.find("turn");
    if (t != obj.end() && !t->is_null()) {
      SEMSKIP_THROW_IF_NOT_MSG(t->is_number_integer(), "{}: 'turn' must be an integer, found {}",
                               where, t->type_name());
      turns = t->get<int64_t>();
    }
    std::optional<std::string> language = json_optional_string(obj, "language", where);
    std::optional<std::string> model = json_optional_string(obj, "model", where);
    if (trace_) conv.arrival_s = json_seconds(obj, *trace_, where);
    if (!language_.empty() && language.value_or("") != language_) return false;
    if (!model_.empty() && model.value_or("") != model_) return false;
    if (turns < min_turns_) return false;
    if (max_turns_ > 0 && turns > max_turns_) return false;
    return true;
  }

  WorkloadSpec spec_;
  WorkloadContext ctx_;
  LoadCounters& counters_;
  LineReader reader_;
  ChatTemplate tmpl_;
  std::optional<std::string> trace_;
  std::string language_, model_;
  int64_t min_turns_, max_turns_;
  std::deque<Request> pending_;
};

}  // namespace

std::unique_ptr<RequestSource> open_lmsys(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                          LoadCounters& counters) {
  return std::make_unique<LmsysSource>(spec, ctx, counters);
}

}  // namespace semskip
