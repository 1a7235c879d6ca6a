// Tables as aligned text, as `semskip report` prints them.
#include <string>

#include <gtest/gtest.h>

#include "reports/table_text.h"

namespace semskip::report {
namespace {

TEST(TableText, NumbersRightTextLeftNoTrailingBlanks) {
  Table t;
  t.add("policy", std::vector<std::string>{"none", "static:k=2"})
      .add("hit_rate", std::vector<double>{0.0, 0.123456789})
      .add("n_tokens", std::vector<int64_t>{4096, 12});
  EXPECT_EQ(format_table_text(t),
            "policy      hit_rate  n_tokens\n"
            "none               0      4096\n"
            "static:k=2  0.123457        12\n");
}

TEST(TableText, WidthCountsCodePointsNotBytes) {
  Table t;
  t.add("note", std::vector<std::string>{"naïve", "日本", "x"}).add("v", std::vector<int64_t>{1, 2, 3});
  EXPECT_EQ(format_table_text(t),
            "note   v\n"
            "naïve  1\n"
            "日本     2\n"  // 2 code points, padded to 5
            "x      3\n");
}

TEST(TableText, EmptyTableShowsHeaderAndBlankCellsStayBlank) {
  Table t;
  t.add("a", std::vector<int64_t>{}).add("b", std::vector<std::string>{});
  EXPECT_EQ(format_table_text(t), "a  b\n");
  std::vector<TextColumn> cols = {{"file", false, {"a.h5", "b.h5"}}, {"x", true, {"", "12"}}, {"y", false, {"q"}}};
  EXPECT_EQ(render_text(cols),
            "file   x  y\n"
            "a.h5      q\n"
            "b.h5  12\n");
}

TEST(TableText, ShownUnitsOnePerColumn) {
  Table t;
  t.add("hit_rate", std::vector<double>{0.0, 0.4125})
      .add("top1_agreement_lo", std::vector<double>{0.5, 1.0})
      .add("t_skip_s", std::vector<double>{0.0125, 0.5})
      .add("t_full_s", std::vector<double>{0.5, 2.0})
      .add("t_lookup_ns", std::vector<int64_t>{1'500'000, 2'000'000'000})
      .add("flops_full", std::vector<int64_t>{1'250'000'000'000, 5'000'000'000})
      .add("lookup_query_flops", std::vector<int64_t>{1'500'000'000, 2'000'000})
      .add("memory_bytes", std::vector<int64_t>{3 * 1024 * 1024, 512})
      .add("tokens_per_s", std::vector<double>{4096.5, 10})
      .add("n_tokens", std::vector<int64_t>{7, 8});
  std::vector<TextColumn> c;
  for (const Column& col : t.columns()) c.push_back(to_shown_column(col));
  EXPECT_EQ(c[0].name, "hit_rate [%]");
  EXPECT_EQ(c[0].cells, (std::vector<std::string>{"0.00", "41.25"}));
  EXPECT_EQ(c[1].name, "top1_agreement_lo [%]");
  EXPECT_EQ(c[2].name, "t_skip_s [ms]");  // every value below 1 s
  EXPECT_EQ(c[2].cells, (std::vector<std::string>{"12.500", "500.000"}));
  EXPECT_EQ(c[3].name, "t_full_s [s]");
  EXPECT_EQ(c[3].cells, (std::vector<std::string>{"0.500", "2.000"}));
  EXPECT_EQ(c[4].name, "t_lookup_ns [s]");
  EXPECT_EQ(c[4].cells, (std::vector<std::string>{"0.002", "2.000"}));
  EXPECT_EQ(c[5].name, "flops_full [TFLOP]");
  EXPECT_EQ(c[5].cells, (std::vector<std::string>{"1.25", "0.005"}));
  EXPECT_EQ(c[6].name, "lookup_query_flops [GFLOP]");
  EXPECT_EQ(c[7].name, "memory_bytes [MiB]");
  EXPECT_EQ(c[7].cells, (std::vector<std::string>{"3", "0.0004883"}));
  EXPECT_EQ(c[8].name, "tokens_per_s");  // a rate, shown as stored
  EXPECT_EQ(c[9].name, "n_tokens");
  EXPECT_EQ(c[9].cells, (std::vector<std::string>{"7", "8"}));
}

TEST(TableText, MarkdownAndCsv) {
  EXPECT_EQ(render_markdown({{"p", false, {"a|b"}}, {"x [%]", true, {"1.00"}}}),
            "| p | x [%] |\n|---|---:|\n| a\\|b | 1.00 |\n");
  EXPECT_EQ(csv_line({"plain", "a,b", "say \"hi\"", "two\nlines", ""}),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\n");
  EXPECT_EQ(exact_number(0.1), "0.1");
  EXPECT_EQ(exact_number(1e-5), "1e-05");
  Column c{"v", std::vector<double>{0.30000000000000004}};
  EXPECT_EQ(exact_cell(c, 0), "0.30000000000000004");
}

}  // namespace
}  // namespace semskip::report
