#pragma once
// Memory-mapped safetensors files and Hugging Face checkpoint folders (single file or
// sharded with model.safetensors.index.json). Pickled checkpoints are refused: they can
// execute code when loaded.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/safetensors_header.h"

namespace semskip {

// One tensor's header entry; data points into the mapping owned by its SafetensorsFile.
struct TensorView {
  std::string name;
  std::string dtype;            // as in the header: "F32", "F16", "BF16", "I64", "I32", ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

class SafetensorsFile {
 public:
  // Maps the file and validates the header: its length, JSON syntax, dtypes, shapes and
  // data_offsets (inside the file, matching dtype×shape, non-overlapping). semskip::Error
  // naming the path and the problem on any violation.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const;
  const TensorView& view(const std::string& name) const;  // throws naming path and tensor
  std::vector<std::string> names() const;                  // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A tensor over the mapped bytes (no copy, CPU, read-only by contract: it stays valid while
  // this file is alive), in the dtype stored on disk.
  // The mapping is PROT_READ, so writing through it faults. The tensor also holds a reference
  // to the mapping, so it stays readable after this object is gone. (A tensor whose offset is
  // not a multiple of its item size, which Hugging Face never writes, is copied instead.)
  at::Tensor tensor(const std::string& name) const;
  // Rows [first, first + count) of the tensor's first dimension, over exactly those bytes of
  // the mapping (from the tensor's offset plus first · the bytes of one row; no other byte of
  // the tensor is touched): the slice of a stacked tensor [E, ...] that one rank holds. The same
  // contract as tensor(). semskip::Error naming the file and tensor for a scalar or a range
  // outside [0, shape[0]].
  at::Tensor tensor_rows(const std::string& name, int64_t first, int64_t count) const;

 private:
  // A CPU tensor of `shape` over `nbytes` mapped bytes at `data` (copied when misaligned).
  at::Tensor over_mapping(const TensorView& v, const uint8_t* data, size_t nbytes,
                          const std::vector<int64_t>& shape) const;

  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::shared_ptr<void> mapping_;  // owns map_ (munmap on release); shared with tensor()s
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Safetensors dtype names ("F32", "BF16", "I64", "BOOL", ...) and ATen scalar types; the
// supported set is F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL (sizes: safetensors_header.h). semskip::Error naming `what` (the
// file and tensor) for anything else.
at::ScalarType safetensors_scalar_type(const std::string& dtype, const std::string& what);
const char* safetensors_dtype_name(at::ScalarType t, const std::string& what);

// A Hugging Face model folder's weights: model.safetensors, or the shards listed by
// model.safetensors.index.json. A folder holding only pytorch_model*.bin / *.pt / *.pth is
// refused with a message saying why and how to convert.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& model_dir);

  bool has(const std::string& name) const;
  std::vector<std::string> names() const;
  // The tensor converted to `dtype` on `device`; checks the expected shape when given and
  // throws naming the file, the tensor and both shapes on mismatch. The result is always a
  // fresh contiguous tensor that owns its memory (never the read-only mapping). Floating types
  // convert to floating types and integer types to integer types; mixing is refused.
  at::Tensor get(const std::string& name, at::ScalarType dtype, at::Device device,
                 const std::vector<int64_t>& expected_shape = {}) const;
  // Rows [first, first + count) of the tensor's first dimension (SafetensorsFile::tensor_rows:
  // only their bytes are read), converted like get(); `expected_shape` is the whole tensor's.
  at::Tensor get_rows(const std::string& name, int64_t first, int64_t count, at::ScalarType dtype,
                      at::Device device, const std::vector<int64_t>& expected_shape = {}) const;
  const std::string& dir() const { return dir_; }
  // The file that holds `name` (for zero-copy access through SafetensorsFile::tensor).
  const SafetensorsFile& file_of(const std::string& name) const;
  // Every file opened, in the order of their names.
  std::vector<std::string> files() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;  // tensor name -> file holding it
};

// The checkpoint's tensors that hold NaN or ±inf, by name in name order, with their counts;
// each tensor is read once from the mapping. Empty when every weight is finite.
struct NonFiniteTensor {
  std::string name;
  int64_t n_nan = 0, n_inf = 0, numel = 0;
};
std::vector<NonFiniteTensor> non_finite_tensors(const Checkpoint& ckpt);

// Writes tensors (contiguous, CPU) to a safetensors file; used by tests and by tools that
// dump references. Written to a temporary name and renamed when complete.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace semskip
