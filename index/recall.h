#pragma once
// recall@k of a search against the exact answer: for each query the fraction of its true k
// nearest neighbours that the search returned among its first k, averaged over queries
// (FAISS's IntersectionCriterion). recall@1 is the fraction of queries whose first result
// is the true nearest neighbour.

#include <cstdint>

namespace semskip {

// found: int64 [n, found_stride] (≥ k columns), truth: int64 [n, truth_stride] (≥ k
// columns). −1 entries never match. A query with fewer than k true neighbours (an index
// smaller than k) is scored against the ones it has; one with none is left out.
double recall_at_k(int64_t n, int64_t k, const int64_t* found, int64_t found_stride,
                   const int64_t* truth, int64_t truth_stride);

}  // namespace semskip
