#pragma once
// Synthetic vectors for tests and `semskip index-bench`, float32 [n, dim] row-major.
//
//   uniform    directions uniform on the unit sphere (i.i.d. N(0,1) coordinates; the index
//              normalises, so the length does not matter)
//   clustered  n_centres centres uniform on the unit sphere; each vector is a centre picked
//              uniformly plus N(0, spread²/dim) noise per coordinate (noise norm ≈ spread).
//
// The centres depend on `seed` only and the vectors on (`seed`, `stream`), so keys
// (stream 0) and queries (stream 1) drawn with one seed come from the same clusters.
// std::mt19937_64 and std::normal_distribution: reproducible with one standard library.

#include <cstdint>
#include <string>
#include <vector>

namespace semskip {

struct ClusterSpec {
  int64_t n_centres = 256;
  double spread = 0.5;
};

std::vector<float> uniform_vectors(int64_t n, int64_t dim, uint64_t seed, uint64_t stream);
std::vector<float> clustered_vectors(int64_t n, int64_t dim, uint64_t seed, uint64_t stream,
                                     const ClusterSpec& spec = {});

}  // namespace semskip
