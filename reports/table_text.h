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

// ---- Shown units (`semskip report show|compare`, text and markdown) ----
// A column is shown in one unit for all its rows, named in its header as `name [unit]`:
//   fractions (`*_rate`, `flops_saved_*`, `top1_agreement`, `gen_exact_match`, `recall_at_*`,
//   with their `_lo`/`_hi`/`_mean` variants) as % with 2 decimals;
//   times (`*_s`, `*_ns`) in ms when every |value| is below 1 s, else in s, 3 decimals;
//   FLOPs (names containing `flops`) in MFLOP, GFLOP or TFLOP by the column's largest |value|;
//   `*_bytes` in B, KiB, MiB or GiB the same way; anything else as to_text_column shows it.
struct ShownUnit {
  std::string unit;    // "" : shown as stored
  double scale = 1.0;  // shown = stored * scale
  int decimals = -1;   // fixed decimals; -1: 4 significant digits
};
// The unit a column of this name and these values is shown in.
ShownUnit shown_unit(const std::string& name, const std::vector<double>& values);
// The column in its shown unit; the header becomes `name [unit]`.
TextColumn to_shown_column(const Column& column);
// One value in a unit (for tables whose rows have different units).
std::string format_shown(double value, const ShownUnit& unit);

// GitHub-flavoured markdown table; '|' in cells escaped, numbers right-aligned.
std::string render_markdown(const std::vector<TextColumn>& columns);

// ---- Machine-readable cells (csv, json) ----
// Doubles in shortest round-trip form ("0.1", "1e-05", "nan", "inf"), integers in full.
std::string exact_number(double value);
// One CSV field, quoted (RFC 4180) when it holds a comma, quote or line break.
std::string csv_field(const std::string& value);
// A CSV line ending in "\n".
std::string csv_line(const std::vector<std::string>& fields);
// A cell of a column as exact text (for csv).
std::string exact_cell(const Column& column, size_t row);

}  // namespace semskip::report
