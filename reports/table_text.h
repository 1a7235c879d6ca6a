#pragma once
// Tables as aligned text for terminals (`semskip report`, the tables commands print): a
// header line of column names, then one line per row; numbers right-aligned, text left-aligned.

#include <string>
#include <vector>

#include "reports/table.h"

namespace semskip::report {

// One column already rendered to cells; an empty cell stays blank.
struct TextColumn {
  std::string name;
  bool right_align = false;
  std::vector<std::string> cells;
};

// A cell as text: integers in full, doubles with 6 significant digits, strings as they are.
TextColumn to_text_column(const Column& column);

// Columns separated by two spaces, widths in code points (so UTF-8 text stays aligned),
// every line ending in '\n', no trailing blanks. Shorter columns are padded with blank cells.
std::string render_text(const std::vector<TextColumn>& columns);

std::string format_table_text(const Table& table);

}  // namespace semskip::report
