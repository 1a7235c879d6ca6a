#pragma once
// A 2-D matrix of vectors in NumPy's .npy format (format versions 1.0–3.0, C order), the
// vector file `semskip index-bench --data <file>` reads: numpy.save("keys.npy", x) with x of
// shape [rows, dim] and dtype float32 (float64 is accepted and converted).

#include <cstdint>
#include <string>
#include <vector>

namespace semskip {

struct NpyMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;  // float32 [rows, cols] row-major
};

// semskip::Error naming the path for an unreadable file, a bad header, a dtype other than
// little-endian float32/float64, Fortran order, a shape that is not 2-D, or a short file.
NpyMatrix read_npy_matrix(const std::string& path);
// Writes float32 [rows, cols] as a version 1.0 .npy file.
void write_npy_matrix(const std::string& path, int64_t rows, int64_t cols, const float* data);

}  // namespace semskip
