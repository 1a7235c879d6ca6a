// pairs: GPTCache-style paraphrase pairs, JSONL {"origin", "similar"}. Each line gives two
// requests of one group, so that a cache hit of `similar` on `origin` can be scored as a
// correct hit.
#include <memory>

#include "core/error.h"
#include "workloads/json_record.h"
#include "workloads/line_reader.h"
#include "workloads/loaders/loader_common.h"

namespace semskip {

namespace {

class PairsSource : public RequestSource {
 public:
  PairsSource(const WorkloadSpec& spec, const WorkloadContext& ctx, LoadCounters& counters)
      : spec_(spec), ctx_(ctx), counters_(counters),
        reader_(std::make_unique<LineReader>(spec.path())),
        tmpl_(resolve_chat_template(spec, ctx)), trace_(spec.trace_field()),
        origins_first_(spec.get("order") == "origins-first") {
    SEMSKIP_THROW_IF_NOT_MSG(!(origins_first_ && trace_),
                             "workload '{}': order=origins-first reorders the file, so it cannot "
                             "follow an arrival trace",
                             spec.text());
  }

  std::optional<Request> next() override {
    if (have_similar_) {
      have_similar_ = false;
      return std::move(similar_);
    }
    std::string line;
    while (true) {
      if (!reader_->next(line)) {
        if (!origins_first_ || pass_ == 1) return std::nullopt;
        // Second pass: the similar halves, in the same order and with the same groups.
        pass_ = 1;
        n_pairs_ = 0;
        reader_ = std::make_unique<LineReader>(spec_.path());
        continue;
      }
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      const std::string where = reader_->path() + ":" + std::to_string(reader_->line_number());
      nlohmann::json obj;
      std::string origin, similar, id;
      double arrival = 0;
      try {
        obj = parse_json_record(line, where);
        origin = json_string(obj, "origin", where);
        similar = json_string(obj, "similar", where);
        id = json_optional_id(obj, "id", where).value_or(std::to_string(n_pairs_));
        if (trace_) arrival = json_seconds(obj, *trace_, where);
      } catch (const Error& e) {
        // The second pass meets the lines the first one already counted.
        if (pass_ == 0) skip_or_rethrow(spec_.on_bad_line(), counters_, e.what());
        continue;
      }
      const int64_t group = n_pairs_++;
      if (origins_first_) return make(pass_ == 0 ? origin : similar, group,
                                      id + (pass_ == 0 ? "/origin" : "/similar"), arrival);
      similar_ = make(similar, group, id + "/similar", arrival);
      have_similar_ = true;
      return make(origin, group, id + "/origin", arrival);
    }
  }

 private:
  Request make(const std::string& text, int64_t group, std::string source_id, double arrival) const {
    Request r;
    r.source_id = std::move(source_id);
    r.prompt_text = render_chat({{ChatRole::user, text}}, tmpl_, true);
    r.prompt_tokens =
        encode_if(ctx_, r.prompt_text, reader_->path() + ":" + std::to_string(reader_->line_number()));
    set_output_len(spec_, r);
    r.group = group;
    r.source_file = reader_->path();
    r.source_line = reader_->line_number();
    r.arrival_s = arrival;
    return r;
  }

  WorkloadSpec spec_;
  WorkloadContext ctx_;
  LoadCounters& counters_;
  std::unique_ptr<LineReader> reader_;
  ChatTemplate tmpl_;
  std::optional<std::string> trace_;
  bool origins_first_;
  int pass_ = 0;
  int64_t n_pairs_ = 0;
  bool have_similar_ = false;
  Request similar_;
};

}  // namespace

std::unique_ptr<RequestSource> open_pairs(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                          LoadCounters& counters) {
  return std::make_unique<PairsSource>(spec, ctx, counters);
}

}  // namespace semskip
