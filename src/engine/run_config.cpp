#include "engine/run_config.h"

#include "core/error.h"

namespace semskip {

std::vector<std::string> RunConfig::default_policies() {
  // Two baselines, the residual cache replacing whole blocks, and the configuration of the
  // measured frontier (bench/results/stage1.md): MLPs replaced, PCA keys, a bounded cache.
  return {
      "static:k=1",
      "random:rate=0.1",
      "residual:p=2,r=7,tau=0.95",
      "residual:p=2,r=8,tau=0.98,target=mlp,proj=pca,kdim=64,cap=8192",
  };
}

void RunConfig::validate() const {
  SEMSKIP_THROW_IF_NOT_MSG(chunk >= 2, "--chunk must be ≥ 2, got {}", chunk);
  SEMSKIP_THROW_IF_NOT_MSG(max_requests >= 0, "--max-requests must be ≥ 0, got {}", max_requests);
  SEMSKIP_THROW_IF_NOT_MSG(calib_requests >= 0, "--calib-requests must be ≥ 0, got {}", calib_requests);
  SEMSKIP_THROW_IF_NOT_MSG(batch >= 1, "--batch must be ≥ 1, got {}", batch);
  SEMSKIP_THROW_IF_NOT_MSG(max_new_tokens >= 0, "--max-new-tokens must be ≥ 0, got {}", max_new_tokens);
  SEMSKIP_THROW_IF_NOT_MSG(capacity >= 1, "--capacity must be ≥ 1, got {}", capacity);
  SEMSKIP_THROW_IF_NOT_MSG(bootstrap >= 1, "--bootstrap must be ≥ 1, got {}", bootstrap);
  SEMSKIP_THROW_IF_NOT_MSG(threads >= 0, "--threads must be ≥ 0, got {}", threads);
  SEMSKIP_THROW_IF_NOT_MSG(ep >= 1, "--ep must be ≥ 1, got {}", ep);
  SEMSKIP_THROW_IF_NOT_MSG(shard_of >= 0, "--shard-of must be ≥ 0, got {}", shard_of);
  SEMSKIP_THROW_IF_NOT_MSG(shard_of > 0 || shard_index == 0, "--shard-index needs --shard-of");
  SEMSKIP_THROW_IF_NOT_MSG(shard_of == 0 || (shard_index >= 0 && shard_index < shard_of),
                           "--shard-index must be in 0..{} (--shard-of {}), got {}", shard_of - 1, shard_of,
                           shard_index);
}

nlohmann::json RunConfig::to_json() const {
  return {
      {"model", model},
      {"random_init", random_init},
      {"dtype", dtype},
      {"device", device},
      {"workload", workload},
      {"chunk", chunk},
      {"max_requests", max_requests},
      {"calib_requests", calib_requests},
      {"batch", batch},
      {"max_new_tokens", max_new_tokens},
      {"policies", policies},
      {"indexes", indexes},
      {"capacity", capacity},
      {"bootstrap", bootstrap},
      {"seed", seed},
      {"threads", threads},
      {"report", report},
      {"cache_mode", cache_mode},
      {"sync", sync},
      {"ep", ep},
      {"shard", shard},
      {"shard_of", shard_of},
      {"shard_index", shard_index},
  };
}

RunConfig RunConfig::from_json(const nlohmann::json& j) {
  RunConfig c;
  j.at("model").get_to(c.model);
  j.at("random_init").get_to(c.random_init);
  j.at("dtype").get_to(c.dtype);
  j.at("device").get_to(c.device);
  j.at("workload").get_to(c.workload);
  j.at("chunk").get_to(c.chunk);
  j.at("max_requests").get_to(c.max_requests);
  j.at("calib_requests").get_to(c.calib_requests);
  j.at("batch").get_to(c.batch);
  j.at("max_new_tokens").get_to(c.max_new_tokens);
  j.at("policies").get_to(c.policies);
  j.at("indexes").get_to(c.indexes);
  j.at("capacity").get_to(c.capacity);
  j.at("bootstrap").get_to(c.bootstrap);
  j.at("seed").get_to(c.seed);
  j.at("threads").get_to(c.threads);
  j.at("report").get_to(c.report);
  j.at("cache_mode").get_to(c.cache_mode);
  j.at("sync").get_to(c.sync);
  j.at("ep").get_to(c.ep);
  j.at("shard").get_to(c.shard);
  j.at("shard_of").get_to(c.shard_of);
  j.at("shard_index").get_to(c.shard_index);
  return c;
}

}  // namespace semskip
