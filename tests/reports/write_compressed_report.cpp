// Writes <dir>/compressed.h5: a table of 50000 rows and a 300 x 7 array whose values follow
// formulas that check_compression.py recomputes on its own.
#include <cstdio>
#include <string>
#include <vector>

#include "reports/report_writer.h"
#include "reports/run_info.h"

int main(int argc, char** argv) {
  using namespace semskip::report;
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_compressed_report <dir>\n");
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/compressed.h5";
  const size_t n = 50000;
  std::vector<int64_t> id(n);
  std::vector<double> x(n);
  std::vector<std::string> name(n);
  for (size_t i = 0; i < n; ++i) {
    id[i] = static_cast<int64_t>(i * 37 % 1000);
    x[i] = static_cast<double>(i) / 8.0;
    name[i] = "row" + std::to_string(i % 13);
  }
  std::vector<double> a(300 * 7);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<double>(i % 11) * 0.5;
  ReportWriter w(path);
  write_run_info(w, collect_run_info());
  w.write_table("/big", Table().add("id", id).add("x", x).add("name", name));
  w.write_table("/small", Table().add("v", std::vector<int64_t>{1, 2, 3}));
  w.write_table("/empty", Table().add("v", std::vector<int64_t>{}));
  w.write_array("/matrix", a, {300, 7});
  w.commit();
  return 0;
}
