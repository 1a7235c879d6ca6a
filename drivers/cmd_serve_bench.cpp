// semskip serve-bench: the Stage-2 experiment (issue 18). Requests arrive over time (vLLM's
// arrival process, serve/arrivals.h), a continuous-batching server (serve/server.h) serves
// them with the model, once per policy, every policy on the same arrival trace and policy
// `none` always first; the figures are vLLM's (serve/bench_metrics.h) so that they compare
// with its serving benchmark, plus what skipping saved and how far the outputs moved from
// policy none's. Prints vLLM's result block per policy and a side-by-side table; writes the
// result JSON (--save-result: one JSON array, one object per policy, vLLM's field names and
// semskip's) and the HDF5 report (--report: /summary, /requests, /steps). Files are written
// under a temporary name and renamed when whole.
//
// The model and workload options are `semskip run`'s, resolved by the same RunPlan
// (engine/run_config.h) and loaded the same way (engine/run_requests.h): --num-prompts is
// run's --max-requests under vLLM's name.
//
// Under mpirun every rank runs its own Server on its share of the requests (split as `semskip
// run` splits them, --shard), the ranks in lockstep (every rank takes every step, empty ones
// included, so that a policy's collectives match: a replicated or sharded cache, the --sync
// rule). Rank 0 gathers the records, prints and writes everything.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include <ATen/Parallel.h>

#ifdef SEMSKIP_CUDA
#include <torch/csrc/autograd/profiler_kineto.h>
#endif

#include "comm/runtime.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/strings.h"
#include "drivers/command.h"
#include "drivers/report_flags.h"
#include "engine/evaluator.h"
#include "engine/run_config.h"
#include "engine/run_requests.h"
#include "model/generation.h"
#include "model/layer_plan.h"
#include "model/transformer.h"
#include "parallel_cache/cache_mode.h"
#include "reports/report_writer.h"
#include "reports/run_info.h"
#include "reports/serve_report.h"
#include "reports/table.h"
#include "serve/arrivals.h"
#include "serve/bench_metrics.h"
#include "serve/server.h"
#include "skip/descriptor.h"
#include "skip/skip_policy.h"
#include "tokenizer/tokenizer.h"

namespace semskip {

namespace {

// Output tokens of a request when neither --max-new-tokens nor the workload gives a number
// (vLLM's random set's default output length).
constexpr int64_t kDefaultOutputTokens = 128;

// The options of serve-bench that are not `semskip run`'s.
struct ServeBenchFlags {
  std::string request_rate = "inf";
  double burstiness = 1.0;
  bool arrival_trace = false;
  int64_t max_concurrency = 0;
  std::vector<std::string> goodput;
  std::string percentile_metrics = serve::kDefaultPercentileMetrics;
  std::string metric_percentiles = serve::kDefaultMetricPercentiles;
  bool save_result = false;
  std::string result_filename;
  bool save_detailed = false;
  bool ignore_eos = false;
  int64_t max_num_batched_tokens = serve::ServeOptions{}.max_num_batched_tokens;
  int64_t max_num_seqs = serve::ServeOptions{}.max_num_seqs;
  int64_t block_size = serve::ServeOptions{}.block_size;
  int64_t num_kv_blocks = 0;
  std::string kv_cache_memory;
  std::string index = kDefaultIndexDescriptor;
  bool no_chunked_prefill = false;
  std::string skip_exec = "gather";
  std::string decode_mode = "auto";
  std::string save_prompts;  // JSON Lines of the served requests (ids, prompt ids, lengths, arrival)
  int64_t num_warmups = 0;   // requests served (policy none, all at once, not recorded) before the runs
  std::string profile_out;   // Kineto trace of each policy's steps --profile-steps (CUDA builds)
  std::string profile_steps = "0:4";
};

// "4096", "512MiB", "2GiB", "1.5GB": bytes; semskip::Error naming --kv-cache-memory.
int64_t parse_bytes(const std::string& text) {
  static const std::pair<const char*, double> kUnits[] = {{"GiB", 1073741824.0}, {"MiB", 1048576.0},
                                                         {"KiB", 1024.0},       {"GB", 1e9},
                                                         {"MB", 1e6},           {"KB", 1e3},
                                                         {"B", 1.0}};
  std::string t = trim(text);
  double scale = 1.0;
  for (const auto& [suffix, s] : kUnits) {
    if (ends_with(t, suffix)) {
      t = trim(t.substr(0, t.size() - std::char_traits<char>::length(suffix)));
      scale = s;
      break;
    }
  }
  const double v = parse_double(t, "--kv-cache-memory") * scale;
  SEMSKIP_THROW_IF_NOT_MSG(std::isfinite(v) && v >= 1.0 && v < 9.0e18,
                           "--kv-cache-memory '{}': expected a positive size such as 4GiB or 512MiB", text);
  return static_cast<int64_t>(v);
}

// A per-policy result of this rank, as JSON for the gather to rank 0.
nlohmann::json result_to_json(const serve::ServeResult& r) {
  nlohmann::json reqs = nlohmann::json::array(), steps = nlohmann::json::array();
  for (const serve::RequestRecord& q : r.requests) {
    reqs.push_back({{"id", q.id}, {"n_prompt", q.n_prompt_tokens}, {"arrival", q.arrival_s},
                    {"scheduled", q.scheduled_s}, {"first", q.first_token_s}, {"finish", q.finish_s},
                    {"times", q.token_times_s}, {"tokens", q.output_tokens}, {"preempt", q.n_preemptions},
                    {"skip_p", q.n_prompt_tokens_skipped}, {"skip_o", q.n_output_tokens_skipped},
                    {"reason", q.finish_reason}, {"error", q.error}});
  }
  for (const serve::StepRecord& s : r.steps) {
    steps.push_back({{"i", s.index}, {"start", s.start_s}, {"dur", s.duration_s}, {"seqs", s.n_seqs},
                     {"prefill", s.n_prefill_tokens}, {"decode", s.n_decode_tokens}, {"waiting", s.n_waiting},
                     {"preempted", s.n_preempted}, {"blocks", s.n_kv_blocks_used}, {"skip", s.rows_skipping},
                     {"mlp", s.rows_mlp_skipping}, {"lookup", s.t_lookup_s},
                     {"t_sched", s.t_schedule_s}, {"t_prep", s.t_prepare_s}, {"t_fwd", s.t_forward_s},
                     {"t_fin", s.t_finish_s}, {"gathered", s.kv_gathered},
                     {"forwards", s.n_forwards}, {"fixed", s.fixed_shape}});
  }
  return {{"requests", reqs},
          {"steps", steps},
          {"duration", r.duration_s},
          {"lookups", r.cache.lookups},
          {"hits", r.cache.hits},
          {"vetoed", r.cache.vetoed},
          {"flops_full", r.flops_full},
          {"flops_executed", r.flops_executed},
          {"preemptions", r.n_preemptions}};
}

// One policy's records over every rank.
struct MergedPolicy {
  std::string policy;
  std::vector<serve::RequestRecord> requests;  // ascending id
  std::vector<int64_t> request_rank;
  std::vector<serve::StepRecord> steps;
  std::vector<int64_t> step_rank;
  double duration_s = 0.0;  // the longest rank's
  int64_t lookups = 0, hits = 0, vetoed = 0, flops_full = 0, flops_executed = 0, preemptions = 0;
  double hit_rate() const { return lookups ? double(hits - vetoed) / double(lookups) : 0.0; }
  double flops_saved_net() const { return flops_full ? 1.0 - double(flops_executed) / double(flops_full) : 0.0; }
};

void merge_into(MergedPolicy& m, const nlohmann::json& j, int rank) {
  for (const auto& q : j["requests"]) {
    serve::RequestRecord r;
    r.id = q["id"];
    r.n_prompt_tokens = q["n_prompt"];
    r.arrival_s = q["arrival"];
    r.scheduled_s = q["scheduled"];
    r.first_token_s = q["first"];
    r.finish_s = q["finish"];
    r.token_times_s = q["times"].get<std::vector<double>>();
    r.output_tokens = q["tokens"].get<std::vector<int64_t>>();
    r.n_preemptions = q["preempt"];
    r.n_prompt_tokens_skipped = q["skip_p"];
    r.n_output_tokens_skipped = q["skip_o"];
    r.finish_reason = q["reason"];
    r.error = q["error"];
    m.requests.push_back(std::move(r));
    m.request_rank.push_back(rank);
  }
  for (const auto& s : j["steps"]) {
    serve::StepRecord st;
    st.index = s["i"];
    st.start_s = s["start"];
    st.duration_s = s["dur"];
    st.n_seqs = s["seqs"];
    st.n_prefill_tokens = s["prefill"];
    st.n_decode_tokens = s["decode"];
    st.n_waiting = s["waiting"];
    st.n_preempted = s["preempted"];
    st.n_kv_blocks_used = s["blocks"];
    st.rows_skipping = s["skip"].get<std::vector<int64_t>>();
    st.rows_mlp_skipping = s["mlp"].get<std::vector<int64_t>>();
    st.t_lookup_s = s["lookup"];
    st.t_schedule_s = s["t_sched"];
    st.t_prepare_s = s["t_prep"];
    st.t_forward_s = s["t_fwd"];
    st.t_finish_s = s["t_fin"];
    st.kv_gathered = s["gathered"];
    st.n_forwards = s["forwards"];
    st.fixed_shape = s["fixed"];
    m.steps.push_back(std::move(st));
    m.step_rank.push_back(rank);
  }
  m.duration_s = std::max(m.duration_s, j["duration"].get<double>());
  m.lookups += j["lookups"].get<int64_t>();
  m.hits += j["hits"].get<int64_t>();
  m.vetoed += j["vetoed"].get<int64_t>();
  m.flops_full += j["flops_full"].get<int64_t>();
  m.flops_executed += j["flops_executed"].get<int64_t>();
  m.preemptions += j["preemptions"].get<int64_t>();
}

// Every rank's JSON text on rank 0 (in rank order); other ranks get an empty list.
std::vector<std::string> gather_texts(const std::string& mine, Runtime& rt) {
  if (rt.world_size() == 1) return {mine};
  at::Tensor bytes = at::empty({static_cast<int64_t>(mine.size())}, at::kByte);
  std::memcpy(bytes.data_ptr(), mine.data(), mine.size());
  std::vector<int64_t> counts;
  const at::Tensor all = rt.world().allgatherv(bytes, &counts).contiguous();
  std::vector<std::string> out;
  if (!rt.is_root()) return out;
  const char* p = static_cast<const char*>(all.data_ptr());
  for (int64_t c : counts) {
    out.emplace_back(p, static_cast<size_t>(c));
    p += c;
  }
  return out;
}

// "2026-12-02T03:04:05Z" → "20261202-030405" for a default file name.
std::string compact_utc() {
  std::string t = report::utc_now_iso8601();
  std::string out;
  for (char c : t) {
    if (c == 'T') out += '-';
    else if (std::isdigit(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

// --profile-steps FIRST:COUNT: the scheduler steps whose trace --profile-out writes.
std::pair<int64_t, int64_t> parse_profile_steps(const std::string& text) {
  const std::vector<std::string> parts = split(text, ':');
  SEMSKIP_THROW_IF_NOT_MSG(parts.size() == 2, "--profile-steps '{}': expected FIRST:COUNT (e.g. 100:4)", text);
  const int64_t first = parse_int(parts[0], "--profile-steps FIRST"), count = parse_int(parts[1], "--profile-steps COUNT");
  SEMSKIP_THROW_IF_NOT_MSG(first >= 0 && count >= 1, "--profile-steps '{}': FIRST must be >= 0 and COUNT >= 1", text);
  return {first, count};
}

// The trace file of the policy at `index`: PATH's stem + ".<index>" + its extension.
std::string profile_path(const std::string& path, size_t index) {
  const std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + "." + std::to_string(index) + p.extension().string())).string();
}

// A Kineto trace (CPU operators and CUDA kernels) of a window of scheduler steps.
class StepProfiler {
 public:
  StepProfiler(std::string path, int64_t first, int64_t count) : path_(std::move(path)), first_(first), count_(count) {}
  ~StepProfiler() {
    if (on_) finish();
  }
  // Before the run (a window from step 0) and after each step.
  void before_run() {
    if (first_ == 0) start();
  }
  void after_step(int64_t index) {
    if (index + 1 == first_) start();
    if (on_ && index + 1 == first_ + count_) finish();
  }
  // After the run: a window that outlasted it ends with it.
  void after_run() {
    if (on_) finish();
  }

 private:
  void start() {
#ifdef SEMSKIP_CUDA
    namespace tpi = torch::profiler::impl;
    const tpi::ProfilerConfig config(tpi::ProfilerState::KINETO);
    const std::set<tpi::ActivityType> activities{tpi::ActivityType::CPU, tpi::ActivityType::CUDA};
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
    on_ = true;
#endif
  }
  void finish() {
#ifdef SEMSKIP_CUDA
    on_ = false;
    torch::autograd::profiler::disableProfiler()->save(path_);
    std::fprintf(stderr, "semskip serve-bench: trace of steps %lld..%lld written to %s\n",
                 static_cast<long long>(first_), static_cast<long long>(first_ + count_ - 1), path_.c_str());
#endif
  }
  std::string path_;
  int64_t first_, count_;
  bool on_ = false;
};

int run_serve_bench(RunConfig& cfg, const ServeBenchFlags& f, const ReportFlags& report_flags) {
  Runtime& rt = Runtime::get();
  const bool distributed = rt.world_size() > 1;
  // Everything refusable is refused before the model loads.
  SEMSKIP_THROW_IF_NOT_MSG(cfg.max_requests >= 1, "--num-prompts must be >= 1, got {}", cfg.max_requests);
  SEMSKIP_THROW_IF_NOT_MSG(cfg.max_new_tokens >= 0, "--max-new-tokens must be >= 0, got {}", cfg.max_new_tokens);
  SEMSKIP_THROW_IF_NOT_MSG(f.max_concurrency >= 0, "--max-concurrency must be >= 0 (0: unlimited), got {}",
                           f.max_concurrency);
  SEMSKIP_THROW_IF_NOT_MSG(f.max_num_batched_tokens >= 1, "--max-num-batched-tokens must be >= 1, got {}",
                           f.max_num_batched_tokens);
  SEMSKIP_THROW_IF_NOT_MSG(f.max_num_seqs >= 1, "--max-num-seqs must be >= 1, got {}", f.max_num_seqs);
  SEMSKIP_THROW_IF_NOT_MSG(f.block_size >= 1, "--block-size must be >= 1, got {}", f.block_size);
  SEMSKIP_THROW_IF_NOT_MSG(f.num_warmups >= 0, "--num-warmups must be >= 0, got {}", f.num_warmups);
  const std::pair<int64_t, int64_t> profile_window = parse_profile_steps(f.profile_steps);
#ifndef SEMSKIP_CUDA
  SEMSKIP_THROW_IF_NOT_MSG(f.profile_out.empty(), "--profile-out needs a CUDA build (scripts/gpu/build-cuda.sh)");
#endif
  SEMSKIP_THROW_IF_NOT_MSG(f.num_kv_blocks >= 0, "--num-kv-blocks must be >= 0 (0: derived), got {}",
                           f.num_kv_blocks);
  SEMSKIP_THROW_IF_NOT_MSG(f.num_kv_blocks == 0 || f.kv_cache_memory.empty(),
                           "--num-kv-blocks and --kv-cache-memory both size the KV pool; give one of them");
  SEMSKIP_THROW_IF_NOT_MSG(!f.result_filename.empty() || !f.save_detailed || f.save_result,
                           "--save-detailed adds to the result JSON; give --save-result too");
  const serve::ArrivalOptions arrivals =
      serve::make_arrival_options(f.request_rate, f.burstiness, cfg.seed, f.arrival_trace);
  const double rate = serve::parse_request_rate(f.request_rate);
  const std::vector<serve::LatencyMetric> selected = serve::parse_percentile_metrics(f.percentile_metrics);
  const std::vector<double> percentiles = serve::parse_metric_percentiles(f.metric_percentiles);
  const serve::GoodputSlo slo = serve::parse_goodput(f.goodput);
  const RowExec row_exec = parse_row_exec(f.skip_exec, "option --skip-exec");
  const DecodeMode decode_mode = parse_decode_mode(f.decode_mode, "option --decode-mode");
  const int64_t kv_bytes = f.kv_cache_memory.empty() ? 0 : parse_bytes(f.kv_cache_memory);
  // Policy none first, once; the others in the order given.
  std::vector<std::string> policy_texts = {"none"};
  for (const std::string& p : cfg.policies) {
    if (Descriptor::parse(p).text() == "none") continue;
    policy_texts.push_back(p);
  }
  cfg.policies = policy_texts;
  cfg.indexes = {f.index};
  const RunPlan plan = RunPlan::resolve(cfg);
  if (plan.threads > 0) at::set_num_threads(static_cast<int>(plan.threads));
  const bool save_result = f.save_result || !f.result_filename.empty();
  std::string result_path;
  if (save_result) {
    result_path = f.result_filename;
    if (result_path.empty()) {
      const std::string model_name = std::filesystem::path(plan.model).filename().string();
      result_path = fmt::format("serve-bench-{}qps-{}-{}.json", std::isinf(rate) ? std::string("inf") : fmt::format("{}", rate),
                                model_name, compact_utc());
    }
    if (rt.is_root()) report::check_report_path(result_path, true);  // folder exists and is writable
  }
  if (!f.save_prompts.empty() && rt.is_root()) report::check_report_path(f.save_prompts, true);
  if (!f.profile_out.empty() && rt.is_root()) report::check_report_path(profile_path(f.profile_out, 0), true);
  std::string user_metadata = "{}";
  if (rt.is_root() && !plan.report.empty()) user_metadata = check_report_flags(report_flags, plan.report);

  const ModelOptions mo = plan.model_options(rt.device(plan.device));
  Transformer model = Transformer::load(plan.model, mo);
  const ModelConfig& mc = model.config();
  auto tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_file(plan.model + "/tokenizer.json"));
  WorkloadContext wctx;
  wctx.tokenizer = tokenizer;
  wctx.model_type = mc.model_type;
  wctx.model_vocab_size = mc.vocab_size;
  wctx.max_model_len = plan.max_model_len > 0 ? plan.max_model_len : mc.max_position_embeddings;
  wctx.max_model_len_source = plan.max_model_len > 0 ? "--max-model-len" : "max_position_embeddings in config.json";
  ShardChoice shard;
  shard.strategy = plan.shard;
  shard.n_shards = rt.world_size();
  shard.shard = rt.rank();
  shard.seed = plan.seed;
  Communicator& world = rt.world();
  const RunRequests reqs = load_run_requests(plan.workload, wctx, plan.calib_requests, plan.max_requests,
                                             plan.max_new_tokens, shard, &world);
  const std::string workload = plan.workload.describe();
  SEMSKIP_THROW_IF_NOT_MSG(reqs.n_evaluated_total > 0,
                           "workload '{}' yields no requests to serve after the {} calibration requests (`semskip "
                           "workload stats` shows what it reads)", workload, reqs.calibration.size());

  // The arrival trace of the whole stream (the same on every rank and for every policy); a
  // request's time is the entry of its position after calibration.
  const int64_t first_id = static_cast<int64_t>(reqs.calibration.size());
  std::vector<double> trace;
  if (arrivals.kind == serve::ArrivalKind::trace) {
    for (const Request& r : reqs.evaluated) trace.push_back(r.arrival_s);
  }
  const std::vector<double> times =
      arrivals.kind == serve::ArrivalKind::trace
          ? serve::arrival_times(arrivals, static_cast<int64_t>(trace.size()), trace)
          : serve::arrival_times(arrivals, reqs.n_evaluated_total);
  std::vector<serve::ServeRequest> serve_reqs;
  for (size_t i = 0; i < reqs.evaluated.size(); ++i) {
    const Request& r = reqs.evaluated[i];
    serve::ServeRequest s;
    s.id = r.id;
    s.prompt = r.prompt_tokens;
    s.max_new_tokens = plan.max_new_tokens > 0 ? plan.max_new_tokens
                                               : (r.n_tokens_output > 0 ? r.n_tokens_output : kDefaultOutputTokens);
    if (arrivals.kind == serve::ArrivalKind::trace) {
      s.arrival_s = times[i];
    } else {
      const int64_t pos = r.id - first_id;
      SEMSKIP_THROW_IF_NOT_MSG(pos >= 0 && pos < static_cast<int64_t>(times.size()),
                               "{}: request id {} is outside the served stream of {} requests", r.where(), r.id,
                               times.size());
      s.arrival_s = times[static_cast<size_t>(pos)];
    }
    s.ignore_eos = f.ignore_eos;
    s.where = r.where();
    serve_reqs.push_back(std::move(s));
  }

  // The requests as served (every rank's, ascending id), for a reference run of another
  // engine on the same token ids (bench/gpu/hf_serve_reference.py).
  if (!f.save_prompts.empty()) {
    nlohmann::json mine = nlohmann::json::array();
    for (const serve::ServeRequest& r : serve_reqs)
      mine.push_back({{"id", r.id}, {"arrival_s", r.arrival_s}, {"max_new_tokens", r.max_new_tokens},
                      {"prompt_token_ids", r.prompt}});
    const std::vector<std::string> texts = gather_texts(mine.dump(), rt);
    if (rt.is_root()) {
      std::vector<nlohmann::json> all;
      for (const std::string& t : texts)
        for (auto& j : nlohmann::json::parse(t)) all.push_back(std::move(j));
      std::sort(all.begin(), all.end(),
                [](const nlohmann::json& a, const nlohmann::json& b) { return a["id"] < b["id"]; });
      const std::string tmp = f.save_prompts + ".tmp";
      {
        std::FILE* out = std::fopen(tmp.c_str(), "w");
        SEMSKIP_THROW_IF_NOT_MSG(out != nullptr, "--save-prompts {}: cannot create the file", f.save_prompts);
        bool ok = true;
        for (const nlohmann::json& j : all) ok = ok && std::fprintf(out, "%s\n", j.dump().c_str()) > 0;
        ok = std::fclose(out) == 0 && ok;
        if (!ok) std::remove(tmp.c_str());
        SEMSKIP_THROW_IF_NOT_MSG(ok, "--save-prompts {}: writing failed", f.save_prompts);
      }
      std::error_code ec;
      std::filesystem::rename(tmp, f.save_prompts, ec);
      if (ec) std::remove(tmp.c_str());
      SEMSKIP_THROW_IF_NOT_MSG(!ec, "--save-prompts {}: cannot rename {} to it: {}", f.save_prompts, tmp,
                               ec.message());
    }
  }

  PolicyEnv env = plan.policy_env(mc, model.device());
  env.index_descriptor = f.index;
  attach_distribution(env, plan.cache_mode, world, nullptr);
  // Under mpirun the ranks step in lockstep: a policy's collectives (its sync rule, a
  // replicated or sharded cache, the distribution attached to its environment) need every rank
  // in every step.
  const bool lockstep = distributed;

  serve::ServeOptions so;
  so.max_num_batched_tokens = f.max_num_batched_tokens;
  so.max_num_seqs = f.max_num_seqs;
  so.block_size = f.block_size;
  so.num_kv_blocks = f.num_kv_blocks;
  so.kv_cache_bytes = kv_bytes;
  so.max_model_len = plan.max_model_len;
  so.enable_chunked_prefill = !f.no_chunked_prefill;
  so.max_concurrency = f.max_concurrency;
  so.row_exec = row_exec;
  so.decode = decode_mode;
  if (mc.eos_token_id >= 0) so.eos_token_id = mc.eos_token_id;
  if (lockstep) {
    so.lockstep = [&world](const serve::LockstepState& mine) {
      // Every rank's [has_step, has_unfinished, next_arrival, n_seqs], gathered once.
      const at::Tensor x = at::tensor({mine.has_step ? 1.0 : 0.0, mine.has_unfinished ? 1.0 : 0.0,
                                       mine.next_arrival_s, static_cast<double>(mine.n_seqs)},
                                      at::kDouble);
      const at::Tensor all = world.allgather(x.view({1, 4})).view({-1, 4}).contiguous();  // [ranks, 4]
      const double* v = all.data_ptr<double>();
      serve::LockstepState job;
      for (int64_t r = 0; r < all.size(0); ++r) {
        job.has_step = job.has_step || v[r * 4] > 0.0;
        job.has_unfinished = job.has_unfinished || v[r * 4 + 1] > 0.0;
        const double next = v[r * 4 + 2];
        if (next >= 0.0 && (job.next_arrival_s < 0.0 || next < job.next_arrival_s)) job.next_arrival_s = next;
        if (r < world.rank()) job.row_offset += static_cast<int64_t>(v[r * 4 + 3]);
      }
      job.n_seqs = mine.n_seqs;
      return job;
    };
  }

  if (rt.is_root()) {
    std::fprintf(stderr, "semskip serve-bench: %s, %lld requests, arrivals %s, %zu policies, skip-exec %s, decode %s",
                 plan.model.c_str(), static_cast<long long>(reqs.n_evaluated_total), arrivals.describe().c_str(),
                 policy_texts.size(), row_exec_name(row_exec),
                 lockstep ? "eager (lockstep)" : decode_mode_name(decode_mode));
    if (distributed)
      std::fprintf(stderr, ", %d ranks, cache %s, sync %s%s", rt.world_size(), cache_mode_name(plan.cache_mode),
                   plan.sync.describe().c_str(), lockstep ? ", lockstep" : "");
    std::fputc('\n', stderr);
  }

  // Calibration (policies that need one) on rank 0's reading of the stream's first requests,
  // which every rank reads alike.
  EvalOptions eo;
  eo.eos_token = mc.eos_token_id;
  Evaluator ev(model, eo);
  CalibrationSet calib;
  bool calibrated = false;

  // Every policy is made, and its requirements checked, before any is served: a refusal serves
  // nothing. `none` is served without one (null).
  std::vector<std::unique_ptr<SkipPolicy>> policies;
  for (const Descriptor& desc : plan.policies) {
    policies.push_back(desc.text() == "none" ? nullptr : make_policy(desc.text(), env));
    if (policies.back()) check_policy_requirements(*policies.back(), plan.calib_requests > 0, 1);
  }

  // Warm-up: the first requests, all at once, through the full model and a server of the same
  // options (allocator pools, kernel modules and library handles set up before any clock runs).
  if (f.num_warmups > 0) {
    std::vector<serve::ServeRequest> warm(serve_reqs.begin(),
                                          serve_reqs.begin() + std::min<size_t>(serve_reqs.size(), f.num_warmups));
    for (serve::ServeRequest& r : warm) r.arrival_s = 0.0;
    serve::ServeOptions wo = so;
    wo.on_step = nullptr;
    serve::Server warm_server(model, nullptr, wo);
    const serve::ServeResult wr = warm_server.run(warm);
    if (rt.is_root())
      std::fprintf(stderr, "semskip serve-bench: warm-up of %zu requests took %.2f s (%zu steps, not recorded)\n",
                   warm.size(), wr.duration_s, wr.steps.size());
  }

  bool calib_mlp_out = false;  // one calibration serves every policy
  for (const auto& p : policies) calib_mlp_out = calib_mlp_out || (p && p->needs_calibration_mlp_out());
  std::vector<MergedPolicy> merged;
  for (std::unique_ptr<SkipPolicy>& owned : policies) {
    // Released after its run: one policy's semantic cache in memory at a time.
    const std::unique_ptr<SkipPolicy> policy = std::move(owned);
    if (policy && policy->needs_calibration()) {
      if (!calibrated) calib = ev.calibrate(reqs.calibration, calib_mlp_out);
      calibrated = true;
      policy->calibrate(calib);
    }
    serve::ServeOptions po = so;
    std::unique_ptr<StepProfiler> profiler;
    if (!f.profile_out.empty() && rt.is_root()) {
      profiler = std::make_unique<StepProfiler>(profile_path(f.profile_out, merged.size()), profile_window.first,
                                                profile_window.second);
      po.on_step = [&profiler](const serve::StepRecord& s) { profiler->after_step(s.index); };
    }
    serve::Server server(model, policy.get(), po);
    if (distributed) world.barrier();  // the ranks' clocks start together
    if (profiler) profiler->before_run();
    const serve::ServeResult result = server.run(serve_reqs);
    if (profiler) profiler->after_run();
    const std::vector<std::string> texts = gather_texts(result_to_json(result).dump(), rt);
    if (!rt.is_root()) continue;
    MergedPolicy m;
    m.policy = policy ? policy->describe() : "none";
    for (size_t r = 0; r < texts.size(); ++r) merge_into(m, nlohmann::json::parse(texts[r]), static_cast<int>(r));
    std::vector<size_t> order(m.requests.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return m.requests[a].id < m.requests[b].id; });
    MergedPolicy sorted = m;
    for (size_t i = 0; i < order.size(); ++i) {
      sorted.requests[i] = m.requests[order[i]];
      sorted.request_rank[i] = m.request_rank[order[i]];
    }
    merged.push_back(std::move(sorted));
  }
  if (!rt.is_root()) return 0;

  // Figures, the printed blocks and the side-by-side table.
  const MergedPolicy& none = merged.front();
  std::vector<serve::BenchMetrics> metrics;
  std::vector<serve::OutputAgreement> agreements;
  for (const MergedPolicy& m : merged) {
    SEMSKIP_THROW_IF_NOT_MSG(m.duration_s > 0.0, "policy {}: the serving run took no time (no step was taken)",
                             m.policy);
    metrics.push_back(serve::compute_bench_metrics(m.requests, m.duration_s, percentiles, slo));
    agreements.push_back(serve::compare_outputs(none.requests, m.requests));
  }
  for (size_t i = 0; i < merged.size(); ++i) {
    std::printf("Policy: %s (skip-exec %s)\n", merged[i].policy.c_str(), row_exec_name(row_exec));
    std::printf("%s\n", serve::format_result_block(metrics[i], selected, rate, f.max_concurrency).c_str());
  }
  std::printf("%-36s %10s %10s %10s %8s %10s %8s %10s\n", "policy", "req/s", "out tok/s", "goodput", "hit",
              "saved net", "exact", "prefix");
  for (size_t i = 0; i < merged.size(); ++i) {
    const std::string goodput = metrics[i].has_goodput ? fmt::format("{:.2f}", metrics[i].request_goodput) : "-";
    const std::string hit = merged[i].policy == "none" ? "-" : fmt::format("{:.3f}", merged[i].hit_rate());
    std::printf("%-36s %10.2f %10.2f %10s %8s %10.3f %8.3f %10.2f\n", merged[i].policy.c_str(),
                metrics[i].request_throughput, metrics[i].output_throughput, goodput.c_str(), hit.c_str(),
                merged[i].flops_saved_net(), agreements[i].exact_match(), agreements[i].matched_prefix_mean());
  }
  std::fflush(stdout);

  const report::RunInfo env_info = collect_environment(
      model.device().is_cuda() ? visible_gpus() : std::vector<GpuDescription>{});
  std::string device_text = model.device().str();
  if (model.device().is_cuda() && !visible_gpus().empty()) device_text += " (" + visible_gpus().front().name + ")";
  const nlohmann::json run_json = {
      {"model", plan.model},
      {"dtype", dtype_name(plan.dtype)},
      {"workload", workload},
      {"num_prompts", reqs.n_evaluated_total},
      {"request_rate", std::isinf(rate) ? nlohmann::json("inf") : nlohmann::json(rate)},
      {"burstiness", f.burstiness},
      {"arrivals", arrivals.describe()},
      {"max_concurrency", f.max_concurrency},
      {"seed", plan.seed},
      {"goodput", slo.describe()},
      {"ignore_eos", f.ignore_eos},
      {"max_num_batched_tokens", f.max_num_batched_tokens},
      {"max_num_seqs", f.max_num_seqs},
      {"block_size", f.block_size},
      {"num_kv_blocks", f.num_kv_blocks},
      {"kv_cache_bytes", kv_bytes},
      {"index", f.index},
      {"cache_mode", cache_mode_name(plan.cache_mode)},
      {"sync", plan.sync.describe()},
      {"world_size", rt.world_size()},
      {"host", rt.hosts().front()},
      {"device", device_text},
      {"cpu_model", env_info.cpu_model},
      {"date", report::utc_now_iso8601()},
  };

  if (save_result) {
    nlohmann::ordered_json doc = nlohmann::ordered_json::array();
    auto decode = [&](const std::vector<int64_t>& ids) {
      std::vector<int32_t> t(ids.begin(), ids.end());
      return tokenizer->decode(t);
    };
    for (size_t i = 0; i < merged.size(); ++i) {
      serve::ResultExtras extras;
      extras.policy = merged[i].policy;
      extras.skip_exec = row_exec_name(row_exec);
      extras.hit_rate = merged[i].hit_rate();
      extras.flops_saved_net = merged[i].flops_saved_net();
      extras.agreement = agreements[i];
      extras.run = run_json;
      doc.push_back(serve::result_json(metrics[i], extras, merged[i].requests, f.save_detailed, decode));
    }
    serve::write_json_file(result_path, doc);
    std::fprintf(stderr, "semskip serve-bench: wrote %s\n", result_path.c_str());
  }

  if (!plan.report.empty()) {
    std::vector<report::ServePolicyRecords> runs;
    std::map<int64_t, const serve::RequestRecord*> none_by_id;
    for (const serve::RequestRecord& r : none.requests) none_by_id[r.id] = &r;
    for (const MergedPolicy& m : merged) {
      report::ServePolicyRecords pr;
      pr.policy = m.policy;
      pr.requests = m.requests;
      pr.request_rank = m.request_rank;
      pr.steps = m.steps;
      pr.step_rank = m.step_rank;
      for (const serve::RequestRecord& r : m.requests) {
        auto it = none_by_id.find(r.id);
        if (it == none_by_id.end() || !r.ok() || !it->second->ok()) {
          pr.exact_match.push_back(-1);
          pr.matched_prefix.push_back(-1);
          continue;
        }
        const serve::OutputAgreement a = serve::compare_outputs({*it->second}, {r});
        pr.exact_match.push_back(a.n_exact);
        pr.matched_prefix.push_back(a.matched_prefix_sum);
      }
      runs.push_back(std::move(pr));
    }
    report::Table summary;
    std::vector<std::string> s_policy, s_exec;
    std::vector<int64_t> s_completed, s_failed, s_in, s_out, s_pre, s_lookups, s_hits;
    std::vector<double> s_dur, s_rt, s_gp, s_ot, s_tt, s_hit, s_saved, s_exact, s_prefix, s_ttft, s_tpot, s_itl,
        s_e2el;
    for (size_t i = 0; i < merged.size(); ++i) {
      const serve::BenchMetrics& m = metrics[i];
      s_policy.push_back(merged[i].policy);
      s_exec.push_back(row_exec_name(row_exec));
      s_completed.push_back(m.completed);
      s_failed.push_back(m.failed);
      s_in.push_back(m.total_input);
      s_out.push_back(m.total_output);
      s_pre.push_back(merged[i].preemptions);
      s_lookups.push_back(merged[i].lookups);
      s_hits.push_back(merged[i].hits - merged[i].vetoed);
      s_dur.push_back(m.duration_s);
      s_rt.push_back(m.request_throughput);
      s_gp.push_back(m.has_goodput ? m.request_goodput : -1.0);
      s_ot.push_back(m.output_throughput);
      s_tt.push_back(m.total_token_throughput);
      s_hit.push_back(merged[i].hit_rate());
      s_saved.push_back(merged[i].flops_saved_net());
      s_exact.push_back(agreements[i].exact_match());
      s_prefix.push_back(agreements[i].matched_prefix_mean());
      s_ttft.push_back(m.ttft.mean_ms / 1000.0);
      s_tpot.push_back(m.tpot.mean_ms / 1000.0);
      s_itl.push_back(m.itl.mean_ms / 1000.0);
      s_e2el.push_back(m.e2el.mean_ms / 1000.0);
    }
    summary.add("policy", s_policy).add("skip_exec", s_exec).add("n_completed", s_completed).add("n_failed", s_failed);
    summary.add("n_tokens_input", s_in).add("n_tokens_output", s_out).add("n_preemptions", s_pre);
    summary.add("cache_lookups", s_lookups).add("cache_hits", s_hits).add("duration_s", s_dur);
    summary.add("request_throughput_per_s", s_rt).add("request_goodput_per_s", s_gp);
    summary.add("output_throughput_per_s", s_ot).add("total_token_throughput_per_s", s_tt);
    summary.add("hit_rate", s_hit).add("flops_saved_net", s_saved).add("gen_exact_match", s_exact);
    summary.add("gen_matched_prefix_mean", s_prefix).add("mean_ttft_s", s_ttft).add("mean_tpot_s", s_tpot);
    summary.add("mean_itl_s", s_itl).add("mean_e2el_s", s_e2el);

    report::ReportWriter writer(plan.report);
    report::RunInfo info = env_info;
    info.config_json = run_json.dump();
    info.user_metadata_json = user_metadata;
    info.world_size = rt.world_size();
    info.hosts = rt.hosts();
    write_run_info(writer, info);
    writer.write_table("/summary", summary);
    report::write_serve_tables(writer, runs, mc.n_layers);
    writer.commit();
    std::fprintf(stderr, "semskip serve-bench: wrote %s\n", plan.report.c_str());
  }
  return 0;
}

}  // namespace

void add_serve_bench_command(CLI::App& app, CommandRegistry& reg) {
  static RunConfig cfg;
  static ServeBenchFlags f;
  static ReportFlags report_flags;
  cfg.report = "";
  cfg.max_requests = 100;
  cfg.calib_requests = 0;
  cfg.max_new_tokens = 0;
  CLI::App* sub = reg.add(app, "serve-bench",
                          "serve a workload with continuous batching, requests arriving over time, once per policy "
                          "(none first) on one arrival trace: vLLM's serving metrics and result JSON, FLOPs saved and "
                          "agreement with policy none",
                          [] { return run_serve_bench(cfg, f, report_flags); });
  auto help_of = [](const char* key) {
    const RunOptionInfo* info = find_run_option(key);
    return info ? info->help : std::string();
  };
  // The model and workload: `semskip run`'s options and meanings.
  sub->add_option("--model", cfg.model, help_of("model"));
  sub->add_flag("--random-init", cfg.random_init, help_of("random_init"));
  sub->add_option("--dtype", cfg.dtype, help_of("dtype"))->capture_default_str();
  sub->add_option("--device", cfg.device, help_of("device"))->capture_default_str();
  sub->add_option("--workload", cfg.workload, help_of("workload"));
  sub->add_option("--chunk", cfg.chunk, help_of("chunk"))->capture_default_str();
  sub->add_option("--num-prompts", cfg.max_requests, "requests served (vLLM's name of `semskip run --max-requests`)")
      ->capture_default_str();
  sub->add_option("--calib-requests", cfg.calib_requests,
                  "leading requests of the workload that calibrate policies needing it (static:k=, pca keys), not "
                  "served")
      ->capture_default_str();
  sub->add_option("--max-new-tokens", cfg.max_new_tokens,
                  fmt::format("output tokens per request; 0: the workload's own (vLLM random/sonnet sets), else {}",
                              kDefaultOutputTokens))
      ->capture_default_str();
  sub->add_option("--max-model-len", cfg.max_model_len, help_of("max_model_len"))->capture_default_str();
  sub->add_option("--policy", cfg.policies,
                  "skip policy descriptor, repeatable; `none` is always served, first")
      ->take_all();
  sub->add_option("--index", f.index, "index backend of cache policies")->capture_default_str();
  sub->add_option("--capacity", cfg.capacity, help_of("capacity"))->capture_default_str();
  sub->add_option("--seed", cfg.seed, "seed of the arrival process, the workload generators and the policies")
      ->capture_default_str();
  sub->add_option("--threads", cfg.threads, help_of("threads"))->capture_default_str();
  sub->add_option("--cache-mode", cfg.cache_mode, help_of("cache_mode"))->capture_default_str();
  sub->add_option("--sync", cfg.sync, help_of("sync"))->capture_default_str();
  sub->add_option("--shard", cfg.shard, help_of("shard"))->capture_default_str();
  sub->add_option("--report", cfg.report, "HDF5 report (/summary, /requests, /steps); empty: none");
  add_report_flags(sub, report_flags);
  // vLLM's benchmark flags.
  sub->add_option("--request-rate", f.request_rate,
                  "requests per second; inf: all at t = 0, else gamma inter-arrival times (Poisson at burstiness 1)")
      ->capture_default_str();
  sub->add_option("--burstiness", f.burstiness,
                  "shape of the gamma inter-arrival times (1: Poisson; below 1 burstier, above 1 more even)")
      ->capture_default_str();
  sub->add_flag("--arrival-trace", f.arrival_trace, "serve at the workload's own arrival times (a trace)");
  sub->add_option("--max-concurrency", f.max_concurrency, "requests in flight at most; 0: unlimited")
      ->capture_default_str();
  sub->add_option("--goodput", f.goodput, "SLOs in ms, KEY:VALUE with KEY ttft, tpot or e2el (e.g. ttft:200 tpot:50)")
      ->take_all();
  sub->add_option("--percentile-metrics", f.percentile_metrics,
                  "metrics printed with percentiles: any of ttft,tpot,itl,e2el")
      ->capture_default_str();
  sub->add_option("--metric-percentiles", f.metric_percentiles, "percentiles, comma-separated (e.g. 50,90,99)")
      ->capture_default_str();
  sub->add_flag("--save-result", f.save_result, "write the result JSON (a list, one object per policy)");
  sub->add_option("--result-filename", f.result_filename,
                  "the result JSON's path (implies --save-result); default serve-bench-<rate>qps-<model>-<utc>.json");
  sub->add_flag("--save-detailed", f.save_detailed,
                "add per-request lists to the result JSON (input_lens, output_lens, ttfts, itls, generated_texts, errors)");
  sub->add_flag("--ignore-eos", f.ignore_eos, "generate every request's tokens even past an end token");
  // The server.
  sub->add_option("--max-num-batched-tokens", f.max_num_batched_tokens, "tokens per scheduler step")
      ->capture_default_str();
  sub->add_option("--max-num-seqs", f.max_num_seqs, "sequences per scheduler step")->capture_default_str();
  sub->add_option("--block-size", f.block_size, "KV slots per block")->capture_default_str();
  sub->add_option("--num-kv-blocks", f.num_kv_blocks,
                  "KV blocks in the pool; 0: from --kv-cache-memory, else max-num-seqs sequences of max-model-len")
      ->capture_default_str();
  sub->add_option("--kv-cache-memory", f.kv_cache_memory, "memory of the KV pool (bytes, or 512MiB, 4GiB)");
  sub->add_flag("--no-chunked-prefill", f.no_chunked_prefill, "prefill each prompt whole in one step");
  sub->add_option("--num-warmups", f.num_warmups,
                  "requests served before the measured runs (the first ones, all at once, policy none; not recorded)")
      ->capture_default_str();
  sub->add_option("--profile-out", f.profile_out,
                  "write a Kineto trace (CPU operators, CUDA kernels) of each policy's --profile-steps to "
                  "PATH with the policy's index before the extension (CUDA builds)");
  sub->add_option("--profile-steps", f.profile_steps, "FIRST:COUNT, the scheduler steps --profile-out traces")
      ->capture_default_str();
  sub->add_option("--decode-mode", f.decode_mode,
                  "decoding steps of policy none and of whole-layer static policies: eager | fixed | graph (fixed shapes, a CUDA graph replayed per step "
                  "while the batch stays the same) | auto (graph on CUDA, else eager); not under mpirun")
      ->capture_default_str();
  sub->add_option("--skip-exec", f.skip_exec,
                  "how the rows of a layer that skip and run are executed: gather | bucket | mask")
      ->capture_default_str();
  sub->add_option("--save-prompts", f.save_prompts,
                  "write the served requests as JSON Lines (id, arrival_s, max_new_tokens, prompt_token_ids)");
}

}  // namespace semskip
