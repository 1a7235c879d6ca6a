#pragma once
// The reference k-NN by cosine similarity, in float64: ground truth for recall (docs/conventions.md
// rule 11). Rows are normalised here; keys are scored in blocks of 16384 rows so memory
// stays at [n_queries, 16384] doubles.

#include <cstdint>

namespace semskip {

// keys: float32 [n_keys, dim]; queries: float32 [n_queries, dim]; k ≥ 1.
// rows: int64 [n_queries, k], the key rows by decreasing similarity, −1 past n_keys;
// similarities (optional): float64 [n_queries, k], −inf past n_keys.
void exact_search(int64_t n_keys, const float* keys, int64_t n_queries, const float* queries,
                  int64_t dim, int64_t k, int64_t* rows, double* similarities = nullptr);

}  // namespace semskip
