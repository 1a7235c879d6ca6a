#include "workloads/workload.h"

#include <algorithm>

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

namespace {
// Arrival times draw from their own stream, so that adding arrivals to a generated workload
// does not change its requests.
constexpr uint64_t kArrivalStream = 0x6172726976616C73ULL;  // "arrivals"
}  // namespace

Workload::Workload(const WorkloadSpec& spec, const WorkloadContext& ctx)
    : spec_(spec), model_vocab_size_(ctx.model_vocab_size), max_model_len_(ctx.max_model_len),
      max_model_len_source_(ctx.max_model_len_source) {
  max_requests_ = spec_.max_requests();
  min_prompt_ = spec_.get_int("min_prompt");
  max_prompt_ = spec_.get_int("max_prompt");
  min_output_ = spec_.get_int("min_output");
  max_total_ = spec_.get_int("max_total");
  SEMSKIP_THROW_IF_NOT_MSG(min_prompt_ >= 0 && max_prompt_ >= 0 && min_output_ >= 0 && max_total_ >= 0,
                           "workload '{}': length filters must be >= 0", spec_.text());
  const bool filters = min_prompt_ || max_prompt_ || min_output_ || max_total_;
  SEMSKIP_THROW_IF_NOT_MSG(!filters || ctx.tokenizer,
                           "workload '{}': length filters need a tokenizer", spec_.text());

  const std::string& a = spec_.arrivals();
  if (starts_with(a, "poisson:")) {
    arrivals_ = Arrivals::poisson;
    poisson_rate_ = parse_double(a.substr(8), "arrivals");
    arrival_rng_ = Rng::for_stream(spec_.seed(), kArrivalStream);
  } else if (starts_with(a, "trace:")) {
    arrivals_ = Arrivals::trace;
  }
  source_ = open_request_source(spec_, ctx, counters_);
}

std::unique_ptr<Workload> Workload::open(const WorkloadSpec& spec, const WorkloadContext& ctx) {
  return std::unique_ptr<Workload>(new Workload(spec, ctx));
}

std::unique_ptr<Workload> Workload::open_shard(const WorkloadSpec& spec, const WorkloadContext& ctx,
                                               const ShardPlan& plan) {
  SEMSKIP_THROW_IF_NOT_MSG(plan.n_ranks >= 1 && plan.rank >= 0 && plan.rank < plan.n_ranks,
                           "workload shard: rank {} of {} is not valid", plan.rank, plan.n_ranks);
  std::unique_ptr<Workload> w(new Workload(spec, ctx));
  w->shard_ = plan;
  if (plan.strategy != ShardStrategy::round_robin) {
    w->positions_ = shard(request_sizes(spec, ctx), plan.n_ranks, plan.rank, plan.strategy,
                          plan.seed);
  }
  return w;
}

bool Workload::passes_filters(const Request& r) const {
  const int64_t p = r.n_tokens_prompt(), o = r.n_tokens_output;
  if (min_prompt_ && p < min_prompt_) return false;
  if (max_prompt_ && p > max_prompt_) return false;
  if (min_output_ && o < min_output_) return false;
  if (max_total_ && p + o > max_total_) return false;
  return true;
}

std::optional<Request> Workload::next_global() {
  while (true) {
    if (max_requests_ && n_global_ >= *max_requests_) return std::nullopt;
    std::optional<Request> r = source_->next();
    if (!r) return std::nullopt;
    if (!passes_filters(*r)) {
      ++counters_.n_filtered;
      continue;
    }
    r->id = n_global_++;
    switch (arrivals_) {
      case Arrivals::none: r->arrival_s = 0; break;
      case Arrivals::poisson:
        // The first request arrives at t=0, each next one an exponential gap later.
        if (r->id > 0) clock_s_ += arrival_rng_.exponential(poisson_rate_);
        r->arrival_s = clock_s_;
        break;
      case Arrivals::trace:
        // The scheduler consumes the stream in order, so the trace must be too.
        SEMSKIP_THROW_IF_NOT_MSG(r->id == 0 || r->arrival_s >= clock_s_,
                                 "{}: arrival time {} s is earlier than the previous request's "
                                 "({} s); a trace must be sorted by time",
                                 r->where(), r->arrival_s, clock_s_);
        clock_s_ = r->arrival_s;
        break;
    }
    return r;
  }
}

std::optional<Request> Workload::next() {
  while (true) {
    if (shard_ && shard_->strategy != ShardStrategy::round_robin &&
        next_position_ >= positions_.size())
      return std::nullopt;  // this rank's last request is behind us
    std::optional<Request> r = next_global();
    if (!r) return std::nullopt;
    if (shard_) {
      if (shard_->strategy == ShardStrategy::round_robin) {
        if (r->id % shard_->n_ranks != shard_->rank) continue;
      } else {
        if (r->id != positions_[next_position_]) continue;
        ++next_position_;
      }
    }
    check_fits_model(*r);
    ++n_returned_;
    return r;
  }
}

void Workload::check_fits_model(const Request& r) const {
  if (model_vocab_size_ > 0)
    for (size_t i = 0; i < r.prompt_tokens.size(); ++i)
      SEMSKIP_THROW_IF_NOT_MSG(r.prompt_tokens[i] >= 0 && r.prompt_tokens[i] < model_vocab_size_,
                               "workload '{}': request {} ({}): prompt token {} is id {}, outside the model's "
                               "vocabulary of {} (vocab_size in config.json); the tokenizer does not match the model",
                               spec_.text(), r.id, r.where(), i, r.prompt_tokens[i], model_vocab_size_);
  if (max_model_len_ > 0) {
    const int64_t n = r.n_tokens_prompt() + r.n_tokens_output;
    SEMSKIP_THROW_IF_NOT_MSG(n <= max_model_len_,
                             "workload '{}': request {} ({}) needs {} positions ({} prompt + {} output tokens), "
                             "more than the {} of {}; shorten it, or raise the limit with --max-model-len "
                             "(positions past training are extrapolated)",
                             spec_.text(), r.id, r.where(), n, r.n_tokens_prompt(), r.n_tokens_output,
                             max_model_len_, max_model_len_source_);
  }
}

std::vector<int64_t> request_sizes(const WorkloadSpec& spec, const WorkloadContext& ctx) {
  std::unique_ptr<Workload> w = Workload::open(spec, ctx);
  std::vector<int64_t> sizes;
  while (std::optional<Request> r = w->next()) sizes.push_back(r->n_tokens_prompt() + r->n_tokens_output);
  return sizes;
}

}  // namespace semskip
