#pragma once
// One description of a record type's fields, used everywhere the record is written out
// (docs/architecture.md §6): a FieldTable<Record> lists, in column order, each field's name,
// type (int64, float64, string), unit, meaning and how to read it from (and, for stored
// fields, write it into) a Record. From it come
//   - the report table of a list of records (HDF5 columns, in the table's order),
//   - the flat packing of a record for a gather (int64 and float64 fields, in order) and the
//     unpacking back into a record,
//   - the Markdown table of reports/SCHEMA.md that documents the columns.
// A field without a setter is derived (computed from the others): it is a column but does not
// travel in a packing. A field marked `packed_only` travels but is not a column. String fields
// never travel (the gather fills them itself). This header knows nothing of Torch types.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "reports/table.h"

namespace semskip::report {

enum class FieldType { int64, float64, string };

inline const char* field_type_name(FieldType t) {
  switch (t) {
    case FieldType::int64: return "int64";
    case FieldType::float64: return "float64";
    case FieldType::string: return "string";
  }
  return "?";
}

// What the documentation says of a field.
struct FieldInfo {
  std::string name;
  FieldType type = FieldType::int64;
  std::string unit;         // "ns", "s", "bytes", "FLOPs", "tokens", "fraction", "text", …
  std::string description;  // Markdown
};

// The Markdown table of `fields`: "| column | type | unit | meaning |", one row per field.
inline std::string markdown_table(const std::vector<FieldInfo>& fields) {
  std::string out = "| column | type | unit | meaning |\n|---|---|---|---|\n";
  for (const FieldInfo& f : fields)
    out += "| `" + f.name + "` | " + field_type_name(f.type) + " | " + f.unit + " | " + f.description + " |\n";
  return out;
}

// A table's columns as they are filled row by row (see FieldTable::append).
using Columns = std::vector<Column>;

// Adds `cols` to `t` in order.
inline void add_columns(Table& t, Columns cols) {
  for (Column& c : cols) std::visit([&](auto& v) { t.add(c.name, std::move(v)); }, c.data);
}

template <typename Record>
class FieldTable {
 public:
  struct Field {
    FieldInfo info;
    bool column = true;  // false: travels in a packing, is not a column (packed_only)
    std::function<int64_t(const Record&)> get_int;
    std::function<void(Record&, int64_t)> set_int;
    std::function<double(const Record&)> get_real;
    std::function<void(Record&, double)> set_real;
    std::function<std::string(const Record&)> get_string;
    std::function<void(Record&, std::string)> set_string;
    bool stored() const { return set_int || set_real || set_string; }
  };

  FieldTable& add_int(std::string name, std::string unit, std::string description,
                      std::function<int64_t(const Record&)> get, std::function<void(Record&, int64_t)> set = {}) {
    Field f = make(std::move(name), FieldType::int64, std::move(unit), std::move(description));
    f.get_int = std::move(get), f.set_int = std::move(set);
    fields_.push_back(std::move(f));
    return *this;
  }
  FieldTable& add_real(std::string name, std::string unit, std::string description,
                       std::function<double(const Record&)> get, std::function<void(Record&, double)> set = {}) {
    Field f = make(std::move(name), FieldType::float64, std::move(unit), std::move(description));
    f.get_real = std::move(get), f.set_real = std::move(set);
    fields_.push_back(std::move(f));
    return *this;
  }
  FieldTable& add_string(std::string name, std::string unit, std::string description,
                         std::function<std::string(const Record&)> get,
                         std::function<void(Record&, std::string)> set = {}) {
    Field f = make(std::move(name), FieldType::string, std::move(unit), std::move(description));
    f.get_string = std::move(get), f.set_string = std::move(set);
    fields_.push_back(std::move(f));
    return *this;
  }

  // A stored field at `path` (one member pointer, or a chain: &Record::cache, &CacheStats::hits).
  // Integers and bools are int64 fields, floating point float64, std::string string.
  template <typename... Ms>
  FieldTable& member(std::string name, std::string unit, std::string description, Ms... path) {
    using M = std::remove_reference_t<decltype(deref(std::declval<Record&>(), path...))>;
    auto ref = [=](auto& r) -> auto& { return deref(r, path...); };
    if constexpr (std::is_same_v<M, std::string>) {
      return add_string(std::move(name), std::move(unit), std::move(description),
                        [=](const Record& r) { return ref(r); }, [=](Record& r, std::string v) { ref(r) = std::move(v); });
    } else if constexpr (std::is_floating_point_v<M>) {
      return add_real(std::move(name), std::move(unit), std::move(description),
                      [=](const Record& r) { return static_cast<double>(ref(r)); },
                      [=](Record& r, double v) { ref(r) = static_cast<M>(v); });
    } else {
      static_assert(std::is_integral_v<M>, "a field is an integer, a floating-point number or a string");
      return add_int(std::move(name), std::move(unit), std::move(description),
                     [=](const Record& r) { return static_cast<int64_t>(ref(r)); },
                     [=](Record& r, int64_t v) {
                       if constexpr (std::is_same_v<M, bool>) ref(r) = v != 0;
                       else ref(r) = static_cast<M>(v);
                     });
    }
  }

  // The last field added travels in a packing but is not a column of the report.
  FieldTable& packed_only() {
    fields_.back().column = false;
    return *this;
  }

  const std::vector<Field>& fields() const { return fields_; }

  // The columns' documentation, in order.
  std::vector<FieldInfo> infos() const {
    std::vector<FieldInfo> out;
    for (const Field& f : fields_)
      if (f.column) out.push_back(f.info);
    return out;
  }

  // Empty columns, one per column field, named and typed, in order.
  Columns columns() const {
    Columns out;
    for (const Field& f : fields_) {
      if (!f.column) continue;
      if (f.info.type == FieldType::int64) out.push_back({f.info.name, std::vector<int64_t>{}});
      if (f.info.type == FieldType::float64) out.push_back({f.info.name, std::vector<double>{}});
      if (f.info.type == FieldType::string) out.push_back({f.info.name, std::vector<std::string>{}});
    }
    return out;
  }

  // Appends r's values to cols[at], cols[at + 1], … (columns made by columns(), possibly
  // after the columns of another table); returns the index after the last one.
  size_t append(const Record& r, Columns& cols, size_t at = 0) const {
    for (const Field& f : fields_) {
      if (!f.column) continue;
      ColumnData& d = cols.at(at++).data;
      if (f.info.type == FieldType::int64) std::get<std::vector<int64_t>>(d).push_back(f.get_int(r));
      if (f.info.type == FieldType::float64) std::get<std::vector<double>>(d).push_back(f.get_real(r));
      if (f.info.type == FieldType::string) std::get<std::vector<std::string>>(d).push_back(f.get_string(r));
    }
    return at;
  }

  // The report table of `rows`: one row per record, one column per column field.
  Table table(const std::vector<Record>& rows) const {
    Columns cols = columns();
    for (const Record& r : rows) append(r, cols);
    Table t;
    add_columns(t, std::move(cols));
    return t;
  }

  // Values per packed record: stored int64 fields, stored float64 fields.
  size_t packed_ints() const { return count_packed(FieldType::int64); }
  size_t packed_reals() const { return count_packed(FieldType::float64); }

  // Appends r's stored int64 fields to `ints` and float64 fields to `reals`, in order.
  void pack(const Record& r, std::vector<int64_t>& ints, std::vector<double>& reals) const {
    for (const Field& f : fields_) {
      if (!f.stored()) continue;
      if (f.info.type == FieldType::int64) ints.push_back(f.get_int(r));
      if (f.info.type == FieldType::float64) reals.push_back(f.get_real(r));
    }
  }
  // Sets r's stored numeric fields from packed_ints() values at `ints` and packed_reals() at
  // `reals` (either may be null when the table has none of that type).
  void unpack(const int64_t* ints, const double* reals, Record& r) const {
    for (const Field& f : fields_) {
      if (!f.stored()) continue;
      if (f.info.type == FieldType::int64) f.set_int(r, *ints++);
      if (f.info.type == FieldType::float64) f.set_real(r, *reals++);
    }
  }

 private:
  static Field make(std::string name, FieldType type, std::string unit, std::string description) {
    Field f;
    f.info = {std::move(name), type, std::move(unit), std::move(description)};
    return f;
  }
  template <typename T, typename M, typename... Rest>
  static auto& deref(T& r, M m, Rest... rest) {
    if constexpr (sizeof...(Rest) == 0) return r.*m;
    else return deref(r.*m, rest...);
  }
  size_t count_packed(FieldType t) const {
    size_t n = 0;
    for (const Field& f : fields_) n += f.stored() && f.info.type == t ? 1 : 0;
    return n;
  }

  std::vector<Field> fields_;
};

}  // namespace semskip::report
