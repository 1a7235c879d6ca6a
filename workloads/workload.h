#pragma once
// Workload: the stream of Requests the engine runs. Requests are produced one at a time from
// the file or generator (a 100k-request file is never held twice); the Workload numbers them,
// applies the length filters and --max-requests, sets arrival times and, for a shard, keeps
// only this rank's requests.
//
//   auto w = Workload::open(WorkloadSpec::parse("sharegpt:sg.json,turns=all"), ctx);
//   while (std::optional<Request> r = w->next()) engine.submit(*r);
//   report.skipped_lines = w->counters().n_bad_lines_skipped;

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "workloads/load_counters.h"
#include "workloads/request.h"
#include "workloads/rng.h"
#include "workloads/sharding.h"
#include "workloads/workload_spec.h"

namespace semskip {

class Tokenizer;

struct WorkloadContext {
  // Tokenizes prompts and references. Null: text only (prompt_tokens stay empty); the kinds
  // that work in tokens (text, vllm-*) and the length filters then refuse to open.
  std::shared_ptr<const Tokenizer> tokenizer;
  // config.json "model_type" of the model the workload is for; resolves chat=auto.
  std::string model_type;
  // The model's vocabulary (config.json vocab_size): a prompt id at or above it is refused,
  // naming the request, instead of failing later as an unnamed index error. 0: not checked.
  int64_t model_vocab_size = 0;
  // Positions the run allows (max_position_embeddings, or --max-model-len): a request whose
  // prompt plus output exceeds it is refused with its lengths named. 0: not checked.
  int64_t max_model_len = 0;
  // What raised max_model_len, for the message ("--max-model-len", or the config's field).
  std::string max_model_len_source = "max_position_embeddings";
};

// One loader or generator: requests in source order. id and (unless traced) arrival_s are set
// by the Workload.
class RequestSource {
 public:
  virtual ~RequestSource() = default;
  virtual std::optional<Request> next() = 0;
};

// The loader of spec.kind(); malformed records are counted in `counters` under skip.
std::unique_ptr<RequestSource> open_request_source(const WorkloadSpec& spec,
                                                   const WorkloadContext& ctx,
                                                   LoadCounters& counters);

class Workload {
 public:
  // semskip::Error naming the spec when it cannot be opened (missing file, tokenizer needed).
  static std::unique_ptr<Workload> open(const WorkloadSpec& spec, const WorkloadContext& ctx);
  // Only this rank's part. round-robin streams in one pass; contiguous and balanced first read
  // the whole workload once for the request sizes (every rank reads the same and agrees).
  static std::unique_ptr<Workload> open_shard(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                              const ShardPlan& plan);

  // The next request, or std::nullopt at the end. Request::id is the position in the whole
  // (unsharded) stream.
  std::optional<Request> next();

  const WorkloadSpec& spec() const { return spec_; }
  const LoadCounters& counters() const { return counters_; }
  int64_t n_returned() const { return n_returned_; }

  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

 private:
  Workload(const WorkloadSpec& spec, const WorkloadContext& ctx);
  bool passes_filters(const Request& r) const;
  // semskip::Error naming the request when it does not fit the model (WorkloadContext).
  void check_fits_model(const Request& r) const;
  std::optional<Request> next_global();

  WorkloadSpec spec_;
  int64_t model_vocab_size_ = 0, max_model_len_ = 0;  // WorkloadContext's limits (0: none)
  std::string max_model_len_source_;
  LoadCounters counters_;
  std::unique_ptr<RequestSource> source_;

  int64_t n_global_ = 0;    // requests numbered so far in the whole stream
  int64_t n_returned_ = 0;  // requests returned by next()
  std::optional<int64_t> max_requests_;
  int64_t min_prompt_ = 0, max_prompt_ = 0, min_output_ = 0, max_total_ = 0;

  enum class Arrivals { none, poisson, trace } arrivals_ = Arrivals::none;
  double poisson_rate_ = 0;
  double clock_s_ = 0;  // arrival time of the last request numbered
  Rng arrival_rng_{0};

  // Sharding: round-robin filters on the fly; the others keep the positions of this rank.
  std::optional<ShardPlan> shard_;
  std::vector<int64_t> positions_;  // ascending, for contiguous and balanced
  size_t next_position_ = 0;
};

// Request sizes (prompt + output tokens) of the whole workload, in stream order: the input of
// shard() and assign_ranks().
std::vector<int64_t> request_sizes(const WorkloadSpec& spec, const WorkloadContext& ctx);

}  // namespace semskip
