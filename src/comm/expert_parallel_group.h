#pragma once
// `--ep <n>`: the world in groups of n consecutive ranks (ranks [g·n, (g+1)·n) form group g),
// each group one model replica whose MoE layers run expert-parallel over its ranks. Replicas
// take different tokens (data parallelism across groups, expert parallelism within).

#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm/expert_parallel.h"
#include "model/model_config.h"
#include "model/model_options.h"

namespace semskip {

class ExpertParallelGroup {
 public:
  // Collective over `world`. semskip::Error unless ep_size >= 1 and the world size is a
  // multiple of it, and (when a config is given) the model has MoE layers.
  ExpertParallelGroup(Communicator& world, int ep_size, const ModelConfig* config = nullptr);

  int ep_size() const { return comm_->size(); }
  int index() const { return index_; }        // which group this rank is in
  int n_groups() const { return n_groups_; }
  Communicator& comm() { return *comm_; }     // the ranks of this group
  ExpertParallel& executor() { return *executor_; }
  // The routed experts this rank owns of a model with n_experts: what it loads (ModelOptions::
  // experts, so that weight memory per rank falls with ep_size).
  ExpertShard shard(int64_t n_experts) const;
  // "ep 2 of 4 ranks, group 1/2: 8 experts over 2 ranks: [0,4) [4,8)"
  std::string describe(int64_t n_experts) const;

 private:
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<ExpertParallel> executor_;
  int index_ = 0;
  int n_groups_ = 1;
  int world_size_ = 1;
};

}  // namespace semskip
