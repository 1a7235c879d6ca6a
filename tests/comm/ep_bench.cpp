// comm_ep_bench: the cost of expert parallelism on one forward, run under mpiexec.
//   mpiexec -n N comm_ep_bench --model models/tiny-moe --batch 4 --tokens 128 --ep N
// Each rank forwards its own batch (different token ids); the world is split into --ep groups
// (--ep 1: plain single-process forward, the baseline). Protocol (docs/conventions.md rules 11, 13):
// validate the EP logits against the single-process forward first, then warm up untimed,
// barrier, time repetitions, and reduce over ranks (the slowest rank is the headline).
// Prints one JSON object on rank 0.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "comm/expert_parallel_group.h"
#include "comm/failure.h"
#include "comm/runtime.h"
#include "model/transformer.h"

namespace semskip {
namespace {

struct BenchOptions {
  std::string model;
  int64_t batch = 4;
  int64_t tokens = 128;
  int ep = 1;
  int warmup = 1;
  int reps = 5;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ‖a − b‖ / ‖b‖ in fp64.
double rel_err(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor ad = a.to(at::kDouble), bd = b.to(at::kDouble);
  return (ad - bd).norm().item<double>() / bd.norm().item<double>();
}

nlohmann::json summarise(Communicator& world, const std::vector<double>& per_rank_values) {
  // per_rank_values: this rank's value; gathered -> min / mean / max over ranks.
  const at::Tensor all = world.allgather(at::tensor(per_rank_values, at::kDouble));  // [ranks, k]
  nlohmann::json j = nlohmann::json::array();
  for (int64_t i = 0; i < all.size(1); ++i) {
    const at::Tensor col = all.select(1, i);
    j.push_back({{"min", col.min().item<double>()}, {"mean", col.mean().item<double>()}, {"max", col.max().item<double>()}});
  }
  return j;
}

int run(const BenchOptions& o) {
  Runtime& rt = Runtime::get();
  Communicator& world = rt.world();
  ModelOptions mo;
  mo.attn_impl = AttnImpl::eager;
  const Transformer model = Transformer::load(o.model, mo);
  ExpertParallelGroup group(world, o.ep, &model.config());
  MoeExecutor* executor = o.ep > 1 ? &group.executor() : nullptr;

  at::manual_seed(static_cast<uint64_t>(1234 + rt.rank()));
  const at::Tensor ids = at::randint(model.config().vocab_size, {o.batch, o.tokens}, at::kLong);
  ForwardOptions fo;
  fo.moe_executor = executor;

  // Validate before timing: the EP forward against this rank's single-process forward.
  const double err = executor ? rel_err(model.forward(ids, fo), model.forward(ids)) : 0.0;
  const double worst = world.allreduce(at::tensor({err}, at::kDouble), ReduceOp::max).item<double>();
  SEMSKIP_THROW_IF_NOT_MSG(worst <= 1e-5, "expert-parallel logits differ from the single-process forward: {}", worst);

  for (int i = 0; i < o.warmup; ++i) model.forward(ids, fo);
  world.barrier();
  group.comm().reset_stats();
  group.executor().reset_stats();
  std::vector<double> t_forward;
  for (int i = 0; i < o.reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model.forward(ids, fo);
    t_forward.push_back(seconds_since(t0));
  }
  double t_sum = 0;
  for (double t : t_forward) t_sum += t;
  const double t_mean = t_sum / o.reps;
  const EpStats& ep = group.executor().stats();
  const CollectiveCounters a2a = group.comm().stats()[CollectiveKind::alltoallv];
  const double t_a2a = 1e-9 * static_cast<double>(ep.t_alltoall_ns) / o.reps;
  const double bytes = static_cast<double>(a2a.bytes_sent + a2a.bytes_recv) / o.reps;
  const double n_tokens = static_cast<double>(o.batch * o.tokens);
  const nlohmann::json s = summarise(world, {t_mean, t_a2a, t_a2a / t_mean, bytes, static_cast<double>(a2a.bytes_sent) / o.reps,
                                             n_tokens / t_mean});
  if (rt.is_root()) {
    nlohmann::json out;
    out["model"] = o.model;
    out["world_size"] = rt.world_size();
    out["ep"] = o.ep;
    out["partition"] = o.ep > 1 ? group.describe(model.config().n_experts) : "";
    out["batch"] = o.batch;
    out["tokens"] = o.tokens;
    out["reps"] = o.reps;
    out["validation_max_rel_err"] = worst;
    out["t_forward_s"] = s[0];
    out["t_alltoall_s"] = s[1];
    out["alltoall_fraction"] = s[2];
    out["alltoall_bytes_per_forward"] = s[3];       // sent + received by one rank
    out["alltoall_bytes_sent_per_forward"] = s[4];
    out["tokens_per_s_per_rank"] = s[5];
    // Headline: every rank forwards its batch; the job is as fast as its slowest rank.
    out["tokens_per_s_total"] = rt.world_size() * n_tokens / s[0]["max"].get<double>();
    std::printf("%s\n", out.dump(2).c_str());
  }
  return 0;
}

}  // namespace
}  // namespace semskip

int main(int argc, char** argv) {
  semskip::BenchOptions o;
  CLI::App app{"Cost of expert parallelism on one forward (run under mpiexec)"};
  app.add_option("--model", o.model, "Hugging Face MoE model folder")->required();
  app.add_option("--batch", o.batch, "Sequences per rank")->capture_default_str();
  app.add_option("--tokens", o.tokens, "Tokens per sequence")->capture_default_str();
  app.add_option("--ep", o.ep, "Expert-parallel group size (1: single-process forward)")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed forwards")->capture_default_str();
  app.add_option("--reps", o.reps, "Timed forwards")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return semskip::run(o);
  } catch (const std::exception& e) {
    return semskip::handle_command_failure("dist-ep-bench", e);
  }
}
