// report::Table: columns of one table, checked for unique names and equal lengths.
#include "core/error.h"
#include "reports/report_writer.h"

namespace semskip::report {

namespace {

size_t column_size(const ColumnData& data) {
  return std::visit([](const auto& v) { return v.size(); }, data);
}

template <typename T>
Table& add_column(Table& table, std::vector<Column>& columns, const std::string& name,
                         std::vector<T> values) {
  SEMSKIP_THROW_IF_NOT_MSG(!name.empty(), "table column names must not be empty");
  SEMSKIP_THROW_IF_NOT_MSG(table.find(name) == nullptr, "table already has a column '{}'", name);
  columns.push_back(Column{name, ColumnData(std::move(values))});
  return table;
}

}  // namespace

Table& Table::add(const std::string& name, std::vector<int64_t> values) {
  return add_column(*this, columns_, name, std::move(values));
}

Table& Table::add(const std::string& name, std::vector<double> values) {
  return add_column(*this, columns_, name, std::move(values));
}

Table& Table::add(const std::string& name, std::vector<std::string> values) {
  return add_column(*this, columns_, name, std::move(values));
}

const Column* Table::find(const std::string& name) const {
  for (const Column& c : columns_) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

size_t Table::n_rows() const {
  if (columns_.empty()) return 0;
  const size_t n = column_size(columns_.front().data);
  for (const Column& c : columns_) {
    const size_t m = column_size(c.data);
    SEMSKIP_THROW_IF_NOT_MSG(m == n, "table columns disagree on the row count: '{}' has {} rows, '{}' has {}",
                             columns_.front().name, n, c.name, m);
  }
  return n;
}

}  // namespace semskip::report
