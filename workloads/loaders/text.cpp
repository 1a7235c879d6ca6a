// text: plain text, documents separated by blank lines. Each document is tokenized on its own
// and cut into chunks of `chunk` tokens that the engine scores teacher-forced (perplexity,
// next-token agreement); chunks never straddle two documents.
#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "workloads/line_reader.h"
#include "workloads/loaders/loader_common.h"

namespace semskip {

namespace {

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t") == std::string::npos; }

class TextSource : public RequestSource {
 public:
  TextSource(const WorkloadSpec& spec, const WorkloadContext& ctx)
      : spec_(spec), tok_(require_tokenizer(spec, ctx)), ctx_(ctx), reader_(spec.path()),
        chunk_(spec.get_int("chunk")), min_chunk_(spec.get_int("min_chunk")) {
    refuse_trace(spec);
    SEMSKIP_THROW_IF_NOT_MSG(chunk_ >= 1, "workload '{}': chunk must be >= 1", spec.text());
    SEMSKIP_THROW_IF_NOT_MSG(min_chunk_ >= 1 && min_chunk_ <= chunk_,
                             "workload '{}': min_chunk must be in [1, chunk]", spec.text());
  }

  std::optional<Request> next() override {
    while (true) {
      const int64_t n = static_cast<int64_t>(doc_tokens_.size());
      if (pos_ < n) {
        const int64_t len = std::min(chunk_, n - pos_);
        if (len >= min_chunk_) {
          Request r;
          r.prompt_tokens.assign(doc_tokens_.begin() + pos_, doc_tokens_.begin() + pos_ + len);
          r.prompt_text = tok_.decode(r.prompt_tokens);
          r.source_id = "doc" + std::to_string(n_docs_ - 1) + "/chunk" + std::to_string(pos_ / chunk_);
          r.document = "document:" + std::to_string(n_docs_ - 1);
          r.source_file = reader_.path();
          r.source_line = doc_line_;
          pos_ += len;
          return r;
        }
        pos_ = n;  // a short tail below min_chunk
      }
      if (!read_document()) return std::nullopt;
    }
  }

 private:
  bool read_document() {
    std::string line, doc;
    bool in_doc = false;
    while (reader_.next(line)) {
      if (is_blank(line)) {
        if (in_doc) break;
        continue;
      }
      if (!in_doc) {
        in_doc = true;
        doc_line_ = reader_.line_number();
      } else {
        doc += '\n';
      }
      doc += line;
    }
    if (!in_doc) return false;
    doc_tokens_ = encode_from(tok_, doc, reader_.path() + ":" + std::to_string(doc_line_));
    pos_ = 0;
    ++n_docs_;
    return true;
  }

  WorkloadSpec spec_;
  const Tokenizer& tok_;
  WorkloadContext ctx_;  // keeps the tokenizer alive
  LineReader reader_;
  int64_t chunk_, min_chunk_;
  std::vector<int32_t> doc_tokens_;  // [n_tokens] of the current document
  int64_t pos_ = 0;
  int64_t doc_line_ = 0;
  int64_t n_docs_ = 0;
};

}  // namespace

std::unique_ptr<RequestSource> open_text(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                         LoadCounters&) {
  return std::make_unique<TextSource>(spec, ctx);
}

}  // namespace semskip
