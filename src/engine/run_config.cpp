#include "engine/run_config.h"

#include "core/error.h"

namespace semskip {

std::vector<std::string> RunConfig::default_policies() {
  return {
      "static:k=2",
      "residual:p=2,r=7,tau=0.95",
      "residual:p=3,r=6,tau=0.97",
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
  };
}

}  // namespace semskip
