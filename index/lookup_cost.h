#pragma once
// FLOPs charged for one vector-index search (docs/architecture.md §5), per query; a multiply-add is 2.
// N = stored keys, d = dimension. The exact formulas count the similarity products only
// (top-k selection, normalisation and id mapping are not charged). Results are rounded to
// the nearest integer and multiplied by the number of queries.
//
//   flat            2·d·N                       every key is scored
//   IVF (Flat, SQ)  2·d·(nlist + nprobe·N/nlist) coarse centroids, then the probed lists,
//                                               assuming balanced lists; SQ codes are
//                                               decoded on the fly and charged as floats
//   IVF-PQ          2·d·nlist + 2·d·ksub + M·nprobe·N/nlist
//                   coarse centroids; for inner product the M look-up tables (ksub = 2^nbits
//                   entries of d/M products each) are built once per query; then one table
//                   look-up and add per sub-quantizer per scanned code
//   PQ              2·d·ksub + M·N              tables once, then M adds per code
//   HNSW            2·d·min(N, 2·M·efSearch + M·L), L = ⌈ln N / ln M⌉ (≥ 1)
//                   a conservative estimate: each of about efSearch level-0 expansions
//                   scores up to 2M neighbours, and the greedy descent scores about M per
//                   upper level. Neighbours already visited are not scored again, and FAISS
//                   stops early once its candidates stop improving, so it computes fewer.
//                   Measured with FAISS 1.7.3's level-0 distance counter (HNSW32, d=256,
//                   efSearch 16–256): 1.5× fewer on uniform data (N=10k), 4–33× fewer on
//                   clustered data (N=10k–100k; the gap grows with efSearch and N). The charge
//                   errs towards overstating the lookup overhead, never the saving.

#include <cstdint>

namespace semskip {

int64_t flat_lookup_flops(int64_t dim, int64_t n_keys, int64_t n_queries);
int64_t ivf_lookup_flops(int64_t dim, int64_t n_keys, int64_t nlist, int64_t nprobe,
                         int64_t n_queries);
int64_t ivfpq_lookup_flops(int64_t dim, int64_t n_keys, int64_t nlist, int64_t nprobe,
                           int64_t pq_m, int64_t pq_nbits, int64_t n_queries);
int64_t pq_lookup_flops(int64_t dim, int64_t n_keys, int64_t pq_m, int64_t pq_nbits,
                        int64_t n_queries);
int64_t hnsw_lookup_flops(int64_t dim, int64_t n_keys, int64_t hnsw_m, int64_t ef_search,
                          int64_t n_queries);

}  // namespace semskip
