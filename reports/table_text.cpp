#include "reports/table_text.h"

#include <algorithm>
#include <cmath>

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

namespace semskip::report {

namespace {

bool ends_with_s(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with_s(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The name without the interval / mean suffix: top1_agreement_lo -> top1_agreement.
std::string base_name(std::string name) {
  for (const char* suffix : {"_lo", "_hi", "_mean"}) {
    if (ends_with_s(name, suffix)) name.resize(name.size() - std::string(suffix).size());
  }
  return name;
}

double max_abs(const std::vector<double>& values) {
  double m = 0;
  for (double v : values) {
    if (std::isfinite(v)) m = std::max(m, std::fabs(v));
  }
  return m;
}

}  // namespace

ShownUnit shown_unit(const std::string& name, const std::vector<double>& values) {
  const std::string base = base_name(name);
  if (ends_with_s(base, "_rate") || starts_with_s(base, "flops_saved") || base == "top1_agreement" ||
      base == "gen_exact_match" || starts_with_s(base, "recall_at_")) {
    return {"%", 100.0, 2};
  }
  if (ends_with_s(base, "_per_s")) return {};
  const bool ns = ends_with_s(base, "_ns");
  if (ns || ends_with_s(base, "_s")) {
    const double to_s = ns ? 1e-9 : 1.0;
    if (max_abs(values) * to_s < 1.0) return {"ms", to_s * 1e3, 3};
    return {"s", to_s, 3};
  }
  if (base.find("flops") != std::string::npos) {
    const double m = max_abs(values);
    if (m >= 1e12) return {"TFLOP", 1e-12, -1};
    if (m >= 1e9) return {"GFLOP", 1e-9, -1};
    return {"MFLOP", 1e-6, -1};
  }
  if (ends_with_s(base, "_bytes")) {
    const double m = max_abs(values);
    if (m >= 1024.0 * 1024 * 1024) return {"GiB", 1.0 / (1024.0 * 1024 * 1024), -1};
    if (m >= 1024.0 * 1024) return {"MiB", 1.0 / (1024.0 * 1024), -1};
    if (m >= 1024.0) return {"KiB", 1.0 / 1024, -1};
    return {"B", 1.0, -1};
  }
  return {};
}

std::string format_shown(double value, const ShownUnit& unit) {
  if (!std::isfinite(value)) return fmt::format("{}", value);
  const double x = value * unit.scale;
  if (unit.decimals >= 0) return fmt::format("{:.{}f}", x, unit.decimals);
  return fmt::format("{:.4g}", x);
}

TextColumn to_shown_column(const Column& column) {
  std::vector<double> values;
  if (const auto* ints = std::get_if<std::vector<int64_t>>(&column.data)) {
    values.assign(ints->begin(), ints->end());
  } else if (const auto* doubles = std::get_if<std::vector<double>>(&column.data)) {
    values = *doubles;
  } else {
    return to_text_column(column);
  }
  const ShownUnit unit = shown_unit(column.name, values);
  if (unit.unit.empty()) return to_text_column(column);
  TextColumn out;
  out.name = column.name + " [" + unit.unit + "]";
  out.right_align = true;
  for (double v : values) out.cells.push_back(format_shown(v, unit));
  return out;
}

std::string render_markdown(const std::vector<TextColumn>& columns) {
  auto escape = [](const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '|') out += "\\|";
      else if (c == '\n') out += ' ';
      else out += c;
    }
    return out;
  };
  size_t n_rows = 0;
  for (const TextColumn& c : columns) n_rows = std::max(n_rows, c.cells.size());
  std::string out = "|";
  for (const TextColumn& c : columns) out += " " + escape(c.name) + " |";
  out += "\n|";
  for (const TextColumn& c : columns) out += c.right_align ? "---:|" : "---|";
  out += "\n";
  for (size_t r = 0; r < n_rows; ++r) {
    out += "|";
    for (const TextColumn& c : columns) out += " " + (r < c.cells.size() ? escape(c.cells[r]) : std::string()) + " |";
    out += "\n";
  }
  return out;
}

std::string exact_number(double value) { return fmt::format("{}", value); }

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += csv_field(fields[i]);
  }
  return out + "\n";
}

std::string exact_cell(const Column& column, size_t row) {
  if (const auto* ints = std::get_if<std::vector<int64_t>>(&column.data)) return std::to_string(ints->at(row));
  if (const auto* doubles = std::get_if<std::vector<double>>(&column.data)) return exact_number(doubles->at(row));
  return std::get<std::vector<std::string>>(column.data).at(row);
}

}  // namespace semskip::report
