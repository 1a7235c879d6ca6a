// jsonl: generic lines {"prompt", "reference"?, "label"?, "choices"?, "id"?}. With choices and
// label the engine scores the task by the log-likelihood of each choice after the prompt.
#include <algorithm>

#include "core/error.h"
#include "workloads/json_record.h"
#include "workloads/line_reader.h"
#include "workloads/loaders/loader_common.h"

namespace semskip {

namespace {

class JsonlSource : public RequestSource {
 public:
  JsonlSource(const WorkloadSpec& spec, const WorkloadContext& ctx, LoadCounters& counters)
      : spec_(spec), ctx_(ctx), counters_(counters), reader_(spec.path()),
        tmpl_(resolve_chat_template(spec, ctx)), trace_(spec.trace_field()) {}

  std::optional<Request> next() override {
    std::string line;
    while (reader_.next(line)) {
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      const std::string where = reader_.path() + ":" + std::to_string(reader_.line_number());
      try {
        return parse(line, where);
      } catch (const Error& e) {
        skip_or_rethrow(spec_.on_bad_line(), counters_, e.what());
      }
    }
    return std::nullopt;
  }

 private:
  Request parse(const std::string& line, const std::string& where) const {
    nlohmann::json obj = parse_json_record(line, where);
    Request r;
    const std::string prompt = json_string(obj, "prompt", where);
    r.source_id = json_optional_id(obj, "id", where).value_or("");
    r.reference_text = json_optional_string(obj, "reference", where).value_or("");
    auto c = obj.find("choices");
    if (c != obj.end() && !c->is_null()) {
      SEMSKIP_THROW_IF_NOT_MSG(c->is_array() && !c->empty(),
                               "{}: 'choices' must be a non-empty array of strings", where);
      for (const nlohmann::json& choice : *c) {
        SEMSKIP_THROW_IF_NOT_MSG(choice.is_string(), "{}: 'choices' must hold strings, found {}",
                                 where, choice.type_name());
        r.choices.push_back(choice.get<std::string>());
      }
    }
    auto l = obj.find("label");
    if (l != obj.end() && !l->is_null()) {
      SEMSKIP_THROW_IF_NOT_MSG(!r.choices.empty(), "{}: 'label' needs 'choices'", where);
      const int64_t n = static_cast<int64_t>(r.choices.size());
      if (l->is_number_integer()) {
        const int64_t v = l->get<int64_t>();
        SEMSKIP_THROW_IF_NOT_MSG(v >= 0 && v < n, "{}: 'label' {} is not an index into the {} choices",
                                 where, v, n);
        r.label = static_cast<int32_t>(v);
      } else if (l->is_string()) {
        // A label may also be written as the text of the right choice.
        auto it = std::find(r.choices.begin(), r.choices.end(), l->get<std::string>());
        SEMSKIP_THROW_IF_NOT_MSG(it != r.choices.end(), "{}: 'label' \"{}\" is not one of the choices",
                                 where, l->get<std::string>());
        r.label = static_cast<int32_t>(it - r.choices.begin());
      } else {
        SEMSKIP_THROW_MSG("{}: 'label' must be a choice index or a choice's text, found {}", where,
                          l->type_name());
      }
    }
    if (trace_) r.arrival_s = json_seconds(obj, *trace_, where);
    r.prompt_text = render_chat({{ChatRole::user, prompt}}, tmpl_, true);
    r.prompt_tokens = encode_if(ctx_, r.prompt_text, where);
    r.reference_tokens = encode_if(ctx_, r.reference_text, where);
    set_output_len(spec_, r);
    r.source_file = reader_.path();
    r.source_line = reader_.line_number();
    return r;
  }

  WorkloadSpec spec_;
  WorkloadContext ctx_;
  LoadCounters& counters_;
  LineReader reader_;
  ChatTemplate tmpl_;
  std::optional<std::string> trace_;
};

}  // namespace

std::unique_ptr<RequestSource> open_jsonl(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                          LoadCounters& counters) {
  return std::make_unique<JsonlSource>(spec, ctx, counters);
}

}  // namespace semskip
