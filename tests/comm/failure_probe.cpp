// dist_failure_probe <mode>: a stand-in for a semskip command under mpiexec, with main's
// failure path (handle_command_failure). The test around it checks that the job ends promptly
// with a non-zero status, naming the failing rank, instead of hanging.
//   ok | throw | kill   every rank but rank 1 waits in an allreduce; rank 1 joins it (ok),
//                       throws before joining (throw), or dies by SIGKILL (kill)
//   ep-ok | ep-throw    an expert-parallel forward of the qwen2moe fixture over all ranks;
//                       with ep-throw rank 1 fails at layer 1's second all-to-all (the token
//                       rows going to their experts) while the other ranks wait in it
//   cache-ok | cache-throw   a sharded-cache step (insert, then a lookup); with cache-throw
//                       rank 1 fails at the lookup's all-to-all (the shards' best matches
//                       going back) after the queries were all-gathered, the others in it
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>

#include "core/error.h"
#include "comm/expert_parallel.h"
#include "comm/failure.h"
#include "comm/runtime.h"
#include "parallel_cache/sharded_cache.h"
#include "model/transformer.h"

namespace {

using namespace semskip;

// Forwards every call to `inner`; on `failing_rank`, once armed, the `nth` alltoallv throws
// instead of joining the collective, half a second late so the other ranks are inside it.
class FailingCommunicator final : public Communicator {
 public:
  FailingCommunicator(Communicator& inner, int failing_rank, int nth, std::string what)
      : inner_(inner), failing_rank_(failing_rank), nth_(nth), what_(std::move(what)) {}

  void arm() { armed_ = true; }

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string describe() const override { return inner_.describe(); }
  std::unique_ptr<Communicator> split(int color, int key) override { return inner_.split(color, key); }
  at::Tensor allreduce(const at::Tensor& x, ReduceOp op) override { return inner_.allreduce(x, op); }
  at::Tensor allgather(const at::Tensor& x) override { return inner_.allgather(x); }
  at::Tensor allgatherv(const at::Tensor& x, std::vector<int64_t>* counts) override {
    return inner_.allgatherv(x, counts);
  }
  std::vector<int64_t> alltoall_counts(const std::vector<int64_t>& send_counts) override {
    return inner_.alltoall_counts(send_counts);
  }
  using Communicator::alltoallv;
  at::Tensor alltoallv(const at::Tensor& rows, const std::vector<int64_t>& send_counts,
                       const std::vector<int64_t>& recv_counts) override {
    if (armed_ && inner_.rank() == failing_rank_ && ++calls_ == nth_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      SEMSKIP_THROW_MSG("{}", what_);
    }
    return inner_.alltoallv(rows, send_counts, recv_counts);
  }
  at::Tensor broadcast(const at::Tensor& x, int root) override { return inner_.broadcast(x, root); }
  std::string broadcast(const std::string& s, int root) override { return inner_.broadcast(s, root); }
  void barrier() override { inner_.barrier(); }

 private:
  Communicator& inner_;
  int failing_rank_, nth_;
  std::string what_;
  bool armed_ = false;
  int calls_ = 0;
};

int run_ep(Runtime& rt, bool fail) {
  ModelOptions mo;
  mo.attn_impl = AttnImpl::eager;
  const Transformer model = Transformer::load(std::string(SEMSKIP_TEST_DATA) + "/parity/qwen2moe", mo);
  // Each MoE layer makes three all-to-alls (counts, rows out, rows back): the 5th is layer 1's rows out.
  FailingCommunicator comm(rt.world(), 1, 5, "rank 1 fails inside the expert all-to-all (layer 1)");
  if (fail) comm.arm();
  ExpertParallel ep(comm);
  at::manual_seed(static_cast<uint64_t>(rt.rank()));
  const at::Tensor ids = at::randint(model.config().vocab_size, {1, 6 + rt.rank()}, at::kLong);
  ForwardOptions fo;
  fo.moe_executor = &ep;
  const at::Tensor logits = model.forward(ids, fo);
  rt.world().barrier();
  std::printf("rank %d: ep forward ok, %lld pairs sent to other ranks\n", rt.rank(),
              static_cast<long long>(ep.stats().n_pairs_sent));
  return 0;
}

int run_cache(Runtime& rt, bool fail) {
  const int64_t key_dim = 4, value_dim = 2;
  FailingCommunicator comm(rt.world(), 1, 1, "rank 1 fails inside the sharded-cache lookup");
  CacheOptions opts;
  opts.index_descriptor = "torch:flat";
  opts.capacity = 16;
  ShardedCache cache(comm, key_dim, value_dim, opts);
  at::manual_seed(static_cast<uint64_t>(rt.rank()));
  at::Tensor keys = at::randn({3, key_dim});
  keys = keys / keys.norm(2, 1, true);
  cache.insert(keys, at::ones({3, value_dim}));
  if (fail) comm.arm();  // the lookup's all-to-all is the next one
  const SkipCache::Match m = cache.search(keys, 1);
  rt.world().barrier();
  std::printf("rank %d: sharded lookup ok, best similarity %.3f\n", rt.rank(), m.similarity.max().item<float>());
  return 0;
}

int run(const std::string& mode) {
  SEMSKIP_THROW_IF_NOT_MSG(mode == "ok" || mode == "throw" || mode == "kill" || mode == "ep-ok" ||
                               mode == "ep-throw" || mode == "cache-ok" || mode == "cache-throw",
                           "mode must be ok, throw, kill, ep-ok, ep-throw, cache-ok or cache-throw, got '{}'", mode);
  Runtime& rt = Runtime::get();
  rt.world().barrier();
  if (mode == "ep-ok" || mode == "ep-throw") return run_ep(rt, mode == "ep-throw");
  if (mode == "cache-ok" || mode == "cache-throw") return run_cache(rt, mode == "cache-throw");
  if (rt.rank() == 1 && mode != "ok") {
    // Let the other ranks reach the allreduce first: they are waiting in it when this one fails.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (mode == "kill") raise(SIGKILL);
    SEMSKIP_THROW_MSG("rank 1 fails on purpose");
  }
  const at::Tensor sum = rt.world().allreduce(at::tensor({int64_t(rt.rank() + 1)}), ReduceOp::sum);
  std::printf("rank %d: sum %lld\n", rt.rank(), static_cast<long long>(sum.item<int64_t>()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc > 1 ? argv[1] : "");
  } catch (const std::exception& e) {
    return semskip::handle_command_failure("dist-probe", e);
  }
}
