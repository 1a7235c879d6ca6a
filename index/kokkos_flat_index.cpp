#include "index/kokkos_flat_index.h"

#include <algorithm>
#include <limits>

#include <Kokkos_Core.hpp>

#include "core/error.h"
#include "index/descriptor.h"
#include "index/lookup_cost.h"

namespace semskip {

namespace {

using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;
using KeyView = Kokkos::View<float**, Kokkos::LayoutRight, MemSpace>;        // [rows, dim]
using IdView = Kokkos::View<int64_t*, MemSpace>;                             // [rows]
using HostMatrix = Kokkos::View<float**, Kokkos::LayoutRight, Kokkos::HostSpace,
                                Kokkos::MemoryTraits<Kokkos::Unmanaged>>;    // caller's memory
using HostIds2 = Kokkos::View<int64_t**, Kokkos::LayoutRight, Kokkos::HostSpace,
                              Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
using HostIds = Kokkos::View<int64_t*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

// Eight independent sums let the compiler vectorise the dot product on CPUs; on GPUs each
// thread keeps them in registers.
KOKKOS_INLINE_FUNCTION float dot(const float* a, const float* b, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    for (int r = 0; r < 8; ++r) acc[r] += a[j + r] * b[j + r];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < d; ++j) s += a[j] * b[j];
  return s;
}

struct SearchKernel {
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Member = Policy::member_type;
  using ScratchFloats = Kokkos::View<float*, ExecSpace::scratch_memory_space,
                                     Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  using ScratchRows = Kokkos::View<int64_t*, ExecSpace::scratch_memory_space,
                                   Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

  KeyView keys;        // float32 [capacity, dim], unit rows [0, n_rows)
  IdView row_ids;      // int64 [capacity]
  KeyView queries;     // float32 [n, dim], unit
  KeyView out_sims;    // float32 [n, k]
  Kokkos::View<int64_t**, Kokkos::LayoutRight, MemSpace> out_ids;  // int64 [n, k]
  int64_t n_rows, dim, k, chunk;
  int scratch_level;
  float no_similarity;  // −inf, set on the host (std::numeric_limits is host-only)

  static size_t scratch_bytes(int64_t chunk, int64_t k) {
    return ScratchFloats::shmem_size(chunk) + ScratchFloats::shmem_size(k) +
           ScratchRows::shmem_size(k);
  }

  KOKKOS_INLINE_FUNCTION void operator()(const Member& m) const {
    const int64_t q = m.league_rank();
    ScratchFloats sims(m.team_scratch(scratch_level), chunk);  // [chunk] this chunk's scores
    ScratchFloats top_sims(m.team_scratch(scratch_level), k);  // [k] descending
    ScratchRows top_rows(m.team_scratch(scratch_level), k);    // [k] rows of keys, −1 = none
    const float* qv = &queries(q, 0);
    Kokkos::single(Kokkos::PerTeam(m), [&]() {
      for (int64_t j = 0; j < k; ++j) {
        top_sims(j) = no_similarity;
        top_rows(j) = -1;
      }
    });
    for (int64_t start = 0; start < n_rows; start += chunk) {
      const int64_t len = n_rows - start < chunk ? n_rows - start : chunk;
      m.team_barrier();  // the previous merge has read sims
      Kokkos::parallel_for(Kokkos::TeamThreadRange(m, len), [&](const int64_t j) {
        sims(j) = dot(qv, &keys(start + j, 0), dim);
      });
      m.team_barrier();
      Kokkos::single(Kokkos::PerTeam(m), [&]() {
        for (int64_t j = 0; j < len; ++j) {
          const float s = sims(j);
          if (!(s > top_sims(k - 1))) continue;
          int64_t p = k - 1;
          while (p > 0 && top_sims(p - 1) < s) {
            top_sims(p) = top_sims(p - 1);
            top_rows(p) = top_rows(p - 1);
            --p;
          }
          top_sims(p) = s;
          top_rows(p) = start + j;
        }
      });
    }
    m.team_barrier();
    Kokkos::parallel_for(Kokkos::TeamThreadRange(m, k), [&](const int64_t j) {
      out_sims(q, j) = top_sims(j);
      out_ids(q, j) = top_rows(j) >= 0 ? row_ids(top_rows(j)) : -1;
    });
  }
};

struct CompactKernel {
  KeyView keys;
  IdView row_ids;
  IdView holes;    // int64 [m] rows to fill
  IdView fillers;  // int64 [m] rows to move there
  int64_t dim;

  KOKKOS_INLINE_FUNCTION void operator()(const int64_t i) const {
    for (int64_t j = 0; j < dim; ++j) keys(holes(i), j) = keys(fillers(i), j);
    row_ids(holes(i)) = row_ids(fillers(i));
  }
};

}  // namespace

struct KokkosFlatIndex::Storage {
  KeyView keys;    // float32 [capacity, dim]
  IdView row_ids;  // int64 [capacity]
};

KokkosFlatIndex::KokkosFlatIndex(IndexDescriptor desc, int64_t dim)
    : VectorIndex(desc.text(), dim), chunk_(kDefaultChunk) {
  SEMSKIP_THROW_IF_NOT_MSG(desc.body() == "flat",
                           "index descriptor '{}': the kokkos backend has only 'flat' (got '{}')",
                           describe(), desc.body());
  chunk_ = desc.take_int("chunk", kDefaultChunk, 1);
  desc.check_all_taken("chunk");
  SEMSKIP_THROW_IF_NOT_MSG(Kokkos::is_initialized(),
                           "index '{}': Kokkos is not initialised (hold a semskip::KokkosScope "
                           "in main before making kokkos: indexes)",
                           describe());
  storage_ = std::make_unique<Storage>();
  storage_->keys = KeyView("semskip::kokkos_flat::keys", 0, dim);
  storage_->row_ids = IdView("semskip::kokkos_flat::row_ids", 0);
}

KokkosFlatIndex::~KokkosFlatIndex() = default;

void KokkosFlatIndex::do_add(int64_t n, const float* keys_unit, const int64_t* ids) {
  const int64_t n_rows = rows_.n_rows();
  const int64_t capacity = static_cast<int64_t>(storage_->keys.extent(0));
  if (n_rows + n > capacity) {
    // Doubling keeps a stream of small adds amortised O(1) per key; resize keeps contents.
    const int64_t new_capacity = std::max({n_rows + n, 2 * capacity, int64_t{1024}});
    Kokkos::resize(storage_->keys, new_capacity, dim());
    Kokkos::resize(storage_->row_ids, new_capacity);
  }
  const auto rows = Kokkos::make_pair(n_rows, n_rows + n);
  Kokkos::deep_copy(Kokkos::subview(storage_->keys, rows, Kokkos::ALL),
                    HostMatrix(const_cast<float*>(keys_unit), n, dim()));
  Kokkos::deep_copy(Kokkos::subview(storage_->row_ids, rows),
                    HostIds(const_cast<int64_t*>(ids), n));
  rows_.append(n, ids);
}

void KokkosFlatIndex::do_search(int64_t n, const float* queries_unit, int64_t k,
                                float* similarities, int64_t* ids) const {
  SearchKernel kernel;
  kernel.keys = storage_->keys;
  kernel.row_ids = storage_->row_ids;
  kernel.queries = KeyView(Kokkos::ViewAllocateWithoutInitializing("semskip::kokkos_flat::queries"), n, dim());
  kernel.out_sims = KeyView(Kokkos::ViewAllocateWithoutInitializing("semskip::kokkos_flat::sims"), n, k);
  kernel.out_ids = decltype(kernel.out_ids)(Kokkos::ViewAllocateWithoutInitializing("semskip::kokkos_flat::ids"), n, k);
  kernel.n_rows = rows_.n_rows();
  kernel.dim = dim();
  kernel.k = k;
  kernel.chunk = std::min(chunk_, kernel.n_rows);
  kernel.no_similarity = -std::numeric_limits<float>::infinity();
  Kokkos::deep_copy(kernel.queries, HostMatrix(const_cast<float*>(queries_unit), n, dim()));

  const size_t bytes = SearchKernel::scratch_bytes(kernel.chunk, k);
  kernel.scratch_level = bytes <= static_cast<size_t>(SearchKernel::Policy::scratch_size_max(0)) ? 0 : 1;
  const auto policy = SearchKernel::Policy(static_cast<int>(n), Kokkos::AUTO)
                          .set_scratch_size(kernel.scratch_level, Kokkos::PerTeam(bytes));
  Kokkos::parallel_for("semskip::kokkos_flat::search", policy, kernel);
  // deep_copy fences before it returns, so the timing of a search includes the kernel.
  Kokkos::deep_copy(HostMatrix(similarities, n, k), kernel.out_sims);
  Kokkos::deep_copy(HostIds2(ids, n, k), kernel.out_ids);
}

int64_t KokkosFlatIndex::do_remove(int64_t n, const int64_t* ids) {
  RowTable::Compaction c = rows_.remove(n, ids);
  const int64_t m = static_cast<int64_t>(c.holes.size());
  if (m > 0) {
    CompactKernel kernel{storage_->keys, storage_->row_ids,
                         IdView("semskip::kokkos_flat::holes", m),
                         IdView("semskip::kokkos_flat::fillers", m), dim()};
    Kokkos::deep_copy(kernel.holes, HostIds(c.holes.data(), m));
    Kokkos::deep_copy(kernel.fillers, HostIds(c.fillers.data(), m));
    Kokkos::parallel_for("semskip::kokkos_flat::compact", Kokkos::RangePolicy<ExecSpace>(0, m), kernel);
    Kokkos::fence();
  }
  return n;
}

int64_t KokkosFlatIndex::lookup_flops(int64_t n_queries) const {
  return flat_lookup_flops(dim(), size(), n_queries);
}

int64_t KokkosFlatIndex::memory_bytes() const {
  return static_cast<int64_t>(storage_->keys.span()) * 4 +
         static_cast<int64_t>(storage_->row_ids.span()) * 8 +
         rows_.memory_bytes() + id_bookkeeping_bytes();
}

}  // namespace semskip
