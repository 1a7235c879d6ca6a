#pragma once
// A report table: named columns of equal length, each int64, double or UTF-8 string. The
// writer stores it as one HDF5 compound dataset (one element per row); the reader gives it
// back in the same form.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace semskip::report {

// A column of a table: every column of one table has the same number of rows.
using ColumnData = std::variant<std::vector<int64_t>, std::vector<double>, std::vector<std::string>>;

struct Column {
  std::string name;
  ColumnData data;
};

// A table built column by column; row count is checked when it is written.
class Table {
 public:
  // semskip::Error for an empty name or a name the table already has.
  Table& add(const std::string& name, std::vector<int64_t> values);
  Table& add(const std::string& name, std::vector<double> values);
  Table& add(const std::string& name, std::vector<std::string> values);
  const std::vector<Column>& columns() const { return columns_; }
  const Column* find(const std::string& name) const;
  size_t n_rows() const;  // 0 for a table without columns; throws if columns disagree

 private:
  std::vector<Column> columns_;
};

}  // namespace semskip::report
