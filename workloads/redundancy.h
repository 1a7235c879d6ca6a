#pragma once
// Redundancy of a workload as the semantic cache would see it: the fraction of requests whose
// nearest other request, by prompt embedding, has cosine similarity above τ. The embedding is
// supplied by the caller (the driver uses the model's mean-pooled residual at the probe
// layer), so workloads/ does not depend on the model.

#include <cstdint>
#include <functional>
#include <vector>

#include "workloads/request.h"

namespace semskip {

// One embedding per request; any dimension, the same for all requests.
using PromptEmbedder = std::function<std::vector<float>(const Request&)>;

struct RedundancyEstimate {
  int64_t n_requests = 0;
  int64_t n_redundant = 0;  // requests whose nearest neighbour's cosine > tau
  double fraction = 0;      // n_redundant / n_requests (0 when fewer than two requests)
  double tau = 0;
  std::vector<float> nearest_cosine;  // [n_requests], the best cosine of each request
};

// Exact all-pairs search over L2-normalised embeddings (O(n²·d)): a zero vector has cosine 0
// with everything. semskip::Error when the dimensions differ.
RedundancyEstimate estimate_redundancy(const std::vector<std::vector<float>>& embeddings,
                                       double tau);

}  // namespace semskip
