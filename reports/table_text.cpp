#include "reports/table_text.h"

#include <algorithm>

#include <fmt/format.h>

namespace semskip::report {

namespace {

// Code points, not bytes: a UTF-8 continuation byte (10xxxxxx) does not start a character.
size_t display_width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

}  // namespace

TextColumn to_text_column(const Column& column) {
  TextColumn out;
  out.name = column.name;
  if (const auto* ints = std::get_if<std::vector<int64_t>>(&column.data)) {
    out.right_align = true;
    for (int64_t x : *ints) out.cells.push_back(fmt::format("{}", x));
  } else if (const auto* doubles = std::get_if<std::vector<double>>(&column.data)) {
    out.right_align = true;
    for (double x : *doubles) out.cells.push_back(fmt::format("{:.6g}", x));
  } else {
    out.cells = std::get<std::vector<std::string>>(column.data);
  }
  return out;
}

std::string render_text(const std::vector<TextColumn>& columns) {
  size_t n_rows = 0;
  std::vector<size_t> widths;
  for (const TextColumn& c : columns) {
    n_rows = std::max(n_rows, c.cells.size());
    size_t w = display_width(c.name);
    for (const std::string& cell : c.cells) w = std::max(w, display_width(cell));
    widths.push_back(w);
  }
  std::string out;
  auto emit_line = [&](auto cell_of) {
    std::string line;
    for (size_t j = 0; j < columns.size(); ++j) {
      const std::string& cell = cell_of(j);
      const std::string pad(widths[j] - display_width(cell), ' ');
      if (j) line += "  ";
      line += columns[j].right_align ? pad + cell : cell + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  emit_line([&](size_t j) -> const std::string& { return columns[j].name; });
  static const std::string kBlank;
  for (size_t r = 0; r < n_rows; ++r) {
    emit_line([&](size_t j) -> const std::string& {
      return r < columns[j].cells.size() ? columns[j].cells[r] : kBlank;
    });
  }
  return out;
}

std::string format_table_text(const Table& table) {
  std::vector<TextColumn> columns;
  for (const Column& c : table.columns()) columns.push_back(to_text_column(c));
  return render_text(columns);
}

}  // namespace semskip::report
