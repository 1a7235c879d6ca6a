#pragma once
// One HDF5 file per run (docs/architecture.md §6), written by one process. Tables are HDF5 compound
// datasets, one element per row, so h5py reads `f["/summary"]["hit_rate"]`. The file is
// written under `<path>.tmp` and renamed to `<path>` only by commit(): a run that fails or is
// killed leaves no partial report under the final name. The root attribute `status` is
// "incomplete" from creation and becomes "complete" as the last thing commit() writes, so a
// copy of an unfinished file is recognisable too (read_run_info refuses it). A run stopped on
// request commits what it completed with status "partial" (`semskip run --resume` continues
// it); the rename makes a partial report as whole a file as a complete one. Tables and arrays
// are chunked and compressed (shuffle + deflate). This library knows nothing of Torch or FAISS
// types.

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "reports/table.h"

namespace semskip::report {

using AttrValue = std::variant<int64_t, double, std::string>;

// The root attribute that says whether the writer finished, and its value when it did.
inline constexpr const char* kStatusAttr = "status";
inline constexpr const char* kStatusComplete = "complete";
inline constexpr const char* kStatusIncomplete = "incomplete";
inline constexpr const char* kStatusPartial = "partial";

// Deflate level of every table and array (1 fastest .. 9 smallest).
inline constexpr unsigned kDeflateLevel = 4;
// Rows per chunk aim at about this many bytes (and at most the table's rows).
inline constexpr size_t kChunkBytes = 64 * 1024;

// Call before any work of a command that will write a report at `path`: semskip::Error naming
// the path when it is empty or a directory, when its parent folder does not exist, is not a
// folder or cannot be written (a probe file is created and removed there), or when a file of
// that name exists and `force` is false.
void check_report_path(const std::string& path, bool force);

class ReportWriter {
 public:
  // Creates `<path>.tmp` (truncating any leftover one); semskip::Error naming the path if
  // it cannot be created.
  explicit ReportWriter(const std::string& path);
  ~ReportWriter();  // without commit(): closes and deletes the temporary file
  ReportWriter(const ReportWriter&) = delete;
  ReportWriter& operator=(const ReportWriter&) = delete;

  // Attribute on the root group ("/") or on an existing table/group at `object_path`.
  void set_attr(const std::string& name, const AttrValue& value, const std::string& object_path = "/");
  // Any integer type (size_t counters, int ranks) is stored as int64; semskip::Error when an
  // unsigned value does not fit.
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  void set_attr(const std::string& name, T value, const std::string& object_path = "/") {
    if constexpr (std::is_unsigned_v<T>) check_fits_int64(name, static_cast<uint64_t>(value));
    set_attr(name, AttrValue(static_cast<int64_t>(value)), object_path);
  }
  // Writes `table` as a compound dataset at `dataset_path` ("/summary", "/index/build").
  // Intermediate groups are created.
  void write_table(const std::string& dataset_path, const Table& table);
  // A dense float64 array of the given shape (row-major), e.g. a histogram or a matrix.
  void write_array(const std::string& dataset_path, const std::vector<double>& values,
                   const std::vector<int64_t>& shape);

  // Writes what has been written so far to disk; the file stays open ("incomplete").
  void flush();
  // Sets status to `status` ("complete", or "partial" for a run stopped on request), flushes,
  // closes and renames `<path>.tmp` to `<path>`.
  void commit(const std::string& status = kStatusComplete);
  const std::string& path() const { return path_; }

 private:
  void check_fits_int64(const std::string& name, uint64_t value) const;

  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace semskip::report
