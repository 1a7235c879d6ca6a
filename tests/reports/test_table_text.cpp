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

}  // namespace
}  // namespace semskip::report
