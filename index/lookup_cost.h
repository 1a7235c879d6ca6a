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
#include <string>

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


// FLOPs charged for inserting keys and for the one-off training of an index (insertion and
// training are overheads of a cache, as its lookups are). Same conventions: similarity
// products only, 2 per multiply-add; copies, normalisation, sorting and bookkeeping are free.
//
// Insertion, per inserted key, N = keys stored when it is added:
//   flat (torch, kokkos, FAISS Flat / SQ)   0: a copy of the key (4·d bytes; SQ encoding is
//                                           elementwise)
//   IVF (Flat, SQ)  2·d·nlist               assignment to the nearest coarse centroid
//   IVF-PQ          2·d·nlist + 2·d·ksub    assignment, then the residual's PQ encoding (each
//                                           of M sub-vectors of d/M scored against ksub codes)
//   PQ              2·d·ksub                encoding
//   HNSW            2·d·(min(N, 2·M·efC + M·L) + min(N, efC)·min(N, 2M) + min(N, 2M)·(min(N, 2M) + 1))
//                   L = ⌈ln N / ln M⌉ (≥ 1), efC = efConstruction (FAISS's default 40): the
//                   candidate search at efConstruction, charged as a lookup at efSearch = efC;
//                   the neighbour selection heuristic, each of ≤ efC candidates scored against
//                   ≤ 2M kept neighbours (level 0 keeps 2M); the back-links, each of ≤ 2M new
//                   neighbours re-scoring its list of 2M + 1 when it overflows. Upper levels
//                   (a fraction 1/M of the keys) are left out; like the lookup's, the charge is
//                   an upper estimate (FAISS's heuristic stops early, lists do not always overflow).
//   An index with train_size stages its keys in an exact index until trained: those are
//   copies (0), and when training happens the staged keys are assigned / encoded as above.
//
// Training, once, on n_train keys, k-means as FAISS runs it (25 iterations, at most 256
// points per centroid: n = min(n_train, 256·k)), each iteration an assignment matmul:
//   IVF             25 · 2·d·nlist·min(n_train, 256·nlist)
//   PQ              25 · 2·d·ksub·min(n_train, 256·ksub)     (M sub-quantizers of d/M dims)
//   IVF-PQ          both, the PQ on the residuals
//   flat, SQ, HNSW  0 (SQ's training is a min / max per dimension)
int64_t hnsw_insert_flops(int64_t dim, int64_t n_keys, int64_t hnsw_m, int64_t ef_construction);
int64_t kmeans_train_flops(int64_t dim, int64_t n_centroids, int64_t n_train);

// What the insertion and training charges need to know of an index, read from its descriptor
// ("faiss:HNSW32|efSearch=64", "faiss:IVF64,PQ8x8|train_size=512", "torch:flat").
struct IndexCostModel {
  enum class Kind { flat, ivf, ivf_pq, pq, hnsw };
  Kind kind = Kind::flat;
  int64_t nlist = 0;                 // IVF lists
  int64_t pq_m = 0, pq_nbits = 0;    // PQ sub-quantizers and bits per code
  int64_t hnsw_m = 0;                // HNSW neighbours per node (level 0 keeps 2M)
  int64_t ef_construction = 40;      // HNSW efConstruction (descriptor key efConstruction)
  int64_t train_size = 0;            // keys an untrained index trains on (0: none given)
  bool needs_training() const { return kind == Kind::ivf || kind == Kind::ivf_pq || kind == Kind::pq; }
};
// semskip::Error naming the descriptor when its body is not one the cost model knows.
IndexCostModel index_cost_model(const std::string& descriptor);
// Per inserted key into an index of `n_keys`, trained (once trained, for IVF / PQ).
int64_t index_insert_flops(const IndexCostModel& m, int64_t dim, int64_t n_keys);
// The one-off training on n_train keys (0 for indexes without training).
int64_t index_train_flops(const IndexCostModel& m, int64_t dim, int64_t n_train);

}  // namespace semskip
