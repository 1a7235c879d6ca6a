#pragma once
// The policies' environment the skip and engine tests build policies in: n_layers layers of
// width hidden (a model config's, where there is one), the exact flat LibTorch index and a
// cache capacity; everything else at PolicyEnv's defaults.

#include <cstdint>

#include "model/model_config.h"
#include "skip/skip_policy.h"

namespace semskip::test {

inline PolicyEnv policy_env(int64_t n_layers, int64_t hidden, int64_t capacity) {
  PolicyEnv e;
  e.n_layers = n_layers;
  e.hidden = hidden;
  e.index_descriptor = "torch:flat";
  e.capacity = capacity;
  return e;
}

inline PolicyEnv policy_env(const ModelConfig& mc, int64_t capacity) {
  return policy_env(mc.n_layers, mc.hidden_size, capacity);
}

}  // namespace semskip::test
