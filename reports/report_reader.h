#pragma once
// Reads an HDF5 report back: its objects, attributes, tables (compound datasets) and arrays.
// It reads what ReportWriter writes, and also tables written by other tools (h5py) as long as
// their columns are integers, floats or strings (fixed or variable length). Used by
// `semskip report` and by tests; it never modifies the file.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "reports/report_writer.h"

namespace semskip::report {

enum class ObjectKind { group, table, array };

struct ObjectInfo {
  std::string path;            // "/summary", "/index/build"
  ObjectKind kind;
  std::vector<int64_t> shape;  // dataset shape (a table's is [n_rows]); empty for a group
};

// A dense float64 array, row-major.
struct Array {
  std::vector<double> values;
  std::vector<int64_t> shape;
};

class ReportReader {
 public:
  // Opens `path` read-only. semskip::Error naming the path when it does not exist or is not
  // an HDF5 file.
  explicit ReportReader(const std::string& path);
  ~ReportReader();
  ReportReader(const ReportReader&) = delete;
  ReportReader& operator=(const ReportReader&) = delete;

  const std::string& path() const { return path_; }

  // Every group and dataset below the root, depth first, each group's members in the order
  // they were created (by name for files that did not track it).
  std::vector<ObjectInfo> list() const;
  bool has(const std::string& object_path) const;

  // Attributes of the root ("/") or of the object at `object_path`, in creation order. Scalar
  // integer, float and string attributes only; semskip::Error naming the attribute otherwise.
  std::vector<std::pair<std::string, AttrValue>> attrs(const std::string& object_path = "/") const;
  bool has_attr(const std::string& name, const std::string& object_path = "/") const;
  // semskip::Error when the attribute does not exist.
  AttrValue attr(const std::string& name, const std::string& object_path = "/") const;

  // A 1-D compound dataset as a Table, columns in the dataset's member order.
  Table read_table(const std::string& dataset_path) const;
  // A floating-point dataset of any rank, converted to float64.
  Array read_array(const std::string& dataset_path) const;

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

// The attribute as text: integers in full, doubles in shortest round-trip form, strings as is.
std::string attr_to_string(const AttrValue& value);

}  // namespace semskip::report
