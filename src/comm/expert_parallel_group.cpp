#include "comm/expert_parallel_group.h"

#include <fmt/format.h>

#include "core/error.h"

namespace semskip {

ExpertParallelGroup::ExpertParallelGroup(Communicator& world, int ep_size, const ModelConfig* config)
    : world_size_(world.size()) {
  // Checked alike on every rank before the split, so a refusal leaves no rank in a collective.
  SEMSKIP_THROW_IF_NOT_MSG(ep_size >= 1, "--ep must be >= 1, got {}", ep_size);
  SEMSKIP_THROW_IF_NOT_MSG(world.size() % ep_size == 0,
                           "--ep {} needs a multiple of {} ranks (e.g. mpirun -np {}), this run has {}", ep_size,
                           ep_size, ep_size, world.size());
  if (config) {
    SEMSKIP_THROW_IF_NOT_MSG(ep_size == 1 || config->n_experts > 0,
                             "--ep {}: {} has no MoE layers, there are no experts to distribute", ep_size,
                             config->source);
  }
  index_ = world.rank() / ep_size;
  n_groups_ = world.size() / ep_size;
  comm_ = world.split(index_, world.rank());
  executor_ = std::make_unique<ExpertParallel>(*comm_);
}

ExpertShard ExpertParallelGroup::shard(int64_t n_experts) const {
  const ExpertPartition part(n_experts, comm_->size());
  return ExpertShard{part.first(comm_->rank()), part.count(comm_->rank())};
}

std::string ExpertParallelGroup::describe(int64_t n_experts) const {
  return fmt::format("ep {} of {} ranks, group {}/{}: {}", comm_->size(), world_size_, index_, n_groups_,
                     ExpertPartition(n_experts, comm_->size()).describe());
}

}  // namespace semskip
