#pragma once
// KokkosFlatIndex: "kokkos:flat[|chunk=<rows>]". Exact search written as named Kokkos kernels
// on Kokkos::DefaultExecutionSpace, so the same code runs on whatever backend the site's
// Kokkos was built with (Serial, OpenMP, CUDA, HIP). Compiled with SEMSKIP_WITH_KOKKOS;
// Kokkos must be initialised first (hold a semskip::KokkosScope in main).
//
// Kernels (docs/conventions.md rule 15):
//   semskip::kokkos_flat::search   team policy, one team per query: the team's threads score
//                                  `chunk` stored keys (default 2048) into team scratch, then
//                                  one thread merges them into the query's running top-k
//                                  (sorted insertion; ties keep the earlier row)
//   semskip::kokkos_flat::compact  removal: surviving rows above the new end fill the holes
// Lookup cost: flat, 2·d·N per query (index/lookup_cost.h).

#include <cstdint>
#include <memory>

#include "index/row_table.h"
#include "index/vector_index.h"

namespace semskip {

class IndexDescriptor;

class KokkosFlatIndex final : public VectorIndex {
 public:
  static constexpr int64_t kDefaultChunk = 2048;

  // semskip::Error naming the descriptor for a body other than "flat", an unknown
  // parameter, or Kokkos not initialised.
  KokkosFlatIndex(IndexDescriptor desc, int64_t dim);
  ~KokkosFlatIndex() override;

  int64_t lookup_flops(int64_t n_queries) const override;
  int64_t memory_bytes() const override;
  int64_t chunk() const { return chunk_; }

 protected:
  void do_add(int64_t n, const float* keys_unit, const int64_t* ids) override;
  void do_search(int64_t n, const float* queries_unit, int64_t k, float* similarities,
                 int64_t* ids) const override;
  int64_t do_remove(int64_t n, const int64_t* ids) override;

 private:
  struct Storage;                    // Kokkos views; kept out of this header
  int64_t chunk_;
  std::unique_ptr<Storage> storage_;
  RowTable rows_;                    // host-side id <-> row of the stored keys
};

}  // namespace semskip
