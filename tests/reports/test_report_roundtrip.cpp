// Writer → reader round trips of every column and attribute type, and the writer's refusals.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "reports/report_reader.h"
#include "reports/report_writer.h"
#include "scratch_dir.h"

namespace semskip::report {
namespace {

using test::ScratchDir;

template <typename T>
const std::vector<T>& column(const Table& t, const std::string& name) {
  const Column* c = t.find(name);
  EXPECT_NE(c, nullptr) << name;
  return std::get<std::vector<T>>(c->data);
}

TEST(ReportRoundTrip, EveryColumnType) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  const std::vector<int64_t> ints = {0, -1, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  const std::vector<double> doubles = {0.5, -1e300, std::numeric_limits<double>::denorm_min(),
                                       std::numeric_limits<double>::infinity()};
  const std::vector<std::string> strings = {"none", "", "residual:p=2,r=7,tau=0.95", std::string(1000, 'x')};
  {
    ReportWriter w(path);
    Table t;
    t.add("n_tokens", ints).add("hit_rate", doubles).add("policy", strings);
    w.write_table("/summary", t);
    w.commit();
  }
  ReportReader r(path);
  Table t = r.read_table("/summary");
  ASSERT_EQ(t.columns().size(), 3u);
  EXPECT_EQ(t.columns()[0].name, "n_tokens");
  EXPECT_EQ(t.columns()[1].name, "hit_rate");
  EXPECT_EQ(t.columns()[2].name, "policy");
  EXPECT_EQ(column<int64_t>(t, "n_tokens"), ints);
  EXPECT_EQ(column<double>(t, "hit_rate"), doubles);  // bit-exact: no conversion on the way
  EXPECT_EQ(column<std::string>(t, "policy"), strings);
}

TEST(ReportRoundTrip, NanSurvives) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  {
    ReportWriter w(path);
    w.write_table("/t", Table().add("x", std::vector<double>{std::nan("")}));
    w.set_attr("y", std::numeric_limits<double>::quiet_NaN());
    w.commit();
  }
  ReportReader r(path);
  EXPECT_TRUE(std::isnan(column<double>(r.read_table("/t"), "x")[0]));
  EXPECT_TRUE(std::isnan(std::get<double>(r.attr("y"))));
}

TEST(ReportRoundTrip, EveryAttributeTypeOnRootGroupAndTable) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  const std::string big_json = "{\"x\": \"" + std::string(200000, 'a') + "\"}";  // beyond 64 KiB
  {
    ReportWriter w(path);
    w.set_attr("count", int64_t{-42});
    w.set_attr("small_int", 7);  // a plain int becomes int64
    w.set_attr("ratio", 0.125);
    w.set_attr("name", std::string("tiny-dense"));
    w.set_attr("literal", "a C string");
    w.set_attr("config_json", big_json);
    w.set_attr("count", int64_t{43});  // setting again replaces
    w.write_table("/index/build", Table().add("t_build_ns", std::vector<int64_t>{5}));
    w.set_attr("descriptor", std::string("faiss:IVF1024,Flat|nprobe=16"), "/index/build");
    w.set_attr("n_size_t", size_t{12345}, "/index/build");
    w.set_attr("n_int32", int32_t{-5}, "/index/build");
    EXPECT_THROW(w.set_attr("too_big", std::numeric_limits<uint64_t>::max(), "/index/build"), Error);
    w.set_attr("n_lists", int64_t{1024}, "/index");
    w.commit();
  }
  ReportReader r(path);
  auto attrs = r.attrs();
  ASSERT_EQ(attrs.size(), 7u);
  // Creation order, not name order; setting "count" again re-created it, so it comes after the
  // others but before "status", which commit() writes last.
  std::vector<std::string> names;
  for (auto& [n, v] : attrs) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"small_int", "ratio", "name", "literal", "config_json", "count", "status"}));
  EXPECT_EQ(std::get<int64_t>(r.attr("count")), 43);
  EXPECT_EQ(std::get<int64_t>(r.attr("small_int")), 7);
  EXPECT_EQ(std::get<double>(r.attr("ratio")), 0.125);
  EXPECT_EQ(std::get<std::string>(r.attr("name")), "tiny-dense");
  EXPECT_EQ(std::get<std::string>(r.attr("literal")), "a C string");
  EXPECT_EQ(std::get<std::string>(r.attr("config_json")), big_json);
  EXPECT_EQ(std::get<std::string>(r.attr("descriptor", "/index/build")), "faiss:IVF1024,Flat|nprobe=16");
  EXPECT_EQ(std::get<int64_t>(r.attr("n_lists", "/index")), 1024);
  EXPECT_EQ(std::get<int64_t>(r.attr("n_size_t", "/index/build")), 12345);
  EXPECT_EQ(std::get<int64_t>(r.attr("n_int32", "/index/build")), -5);
  EXPECT_FALSE(r.has_attr("too_big", "/index/build"));
  EXPECT_TRUE(r.has_attr("ratio"));
  EXPECT_FALSE(r.has_attr("missing"));
  EXPECT_FALSE(r.has_attr("ratio", "/no/such/object"));
  EXPECT_THROW(r.attr("missing"), Error);
}

TEST(ReportRoundTrip, UnicodeStrings) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  const std::vector<std::string> words = {"naïve café", "日本語のテキスト", "emoji 🚀✓", "Ελληνικά", "\xe2\x80\x8b"};
  {
    ReportWriter w(path);
    w.write_table("/requests", Table().add("prompt", words).add("i", std::vector<int64_t>{0, 1, 2, 3, 4}));
    w.set_attr("title", std::string("κόστος — Ünïcödé"));
    w.commit();
  }
  ReportReader r(path);
  EXPECT_EQ(column<std::string>(r.read_table("/requests"), "prompt"), words);
  EXPECT_EQ(std::get<std::string>(r.attr("title")), "κόστος — Ünïcödé");
}

TEST(ReportRoundTrip, EmptyTableKeepsItsColumns) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  {
    ReportWriter w(path);
    Table t;
    t.add("step", std::vector<int64_t>{}).add("t_step_ns", std::vector<double>{}).add("phase", std::vector<std::string>{});
    EXPECT_EQ(t.n_rows(), 0u);
    w.write_table("/steps", t);
    w.commit();
  }
  ReportReader r(path);
  Table t = r.read_table("/steps");
  EXPECT_EQ(t.n_rows(), 0u);
  ASSERT_EQ(t.columns().size(), 3u);
  EXPECT_TRUE(std::holds_alternative<std::vector<int64_t>>(t.columns()[0].data));
  EXPECT_TRUE(std::holds_alternative<std::vector<double>>(t.columns()[1].data));
  EXPECT_TRUE(std::holds_alternative<std::vector<std::string>>(t.columns()[2].data));
}

TEST(ReportRoundTrip, ArraysOfAnyRank) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  std::vector<double> m(2 * 3 * 4);
  for (size_t i = 0; i < m.size(); ++i) m[i] = 0.5 * static_cast<double>(i) - 3;
  {
    ReportWriter w(path);
    w.write_array("/per_layer/hit_histogram", {1, 2, 3}, {3});
    w.write_array("/cube", m, {2, 3, 4});
    w.write_array("/empty", {}, {0, 5});
    w.commit();
  }
  ReportReader r(path);
  Array a = r.read_array("/per_layer/hit_histogram");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(a.values, (std::vector<double>{1, 2, 3}));
  Array c = r.read_array("/cube");
  EXPECT_EQ(c.shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(c.values, m);
  Array e = r.read_array("/empty");
  EXPECT_EQ(e.shape, (std::vector<int64_t>{0, 5}));
  EXPECT_TRUE(e.values.empty());
}

TEST(ReportRoundTrip, ListGivesObjectsInCreationOrder) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  {
    ReportWriter w(path);
    w.write_table("/summary", Table().add("x", std::vector<int64_t>{1, 2}));
    w.write_table("/per_layer", Table().add("layer", std::vector<int64_t>{0, 1, 2}));
    w.write_table("/index/build", Table().add("x", std::vector<double>{1}));
    w.write_array("/index/hist", {1, 2}, {1, 2});
    w.commit();
  }
  ReportReader r(path);
  std::vector<ObjectInfo> objs = r.list();
  ASSERT_EQ(objs.size(), 5u);
  EXPECT_EQ(objs[0].path, "/summary");
  EXPECT_EQ(objs[0].kind, ObjectKind::table);
  EXPECT_EQ(objs[0].shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(objs[1].path, "/per_layer");
  EXPECT_EQ(objs[2].path, "/index");
  EXPECT_EQ(objs[2].kind, ObjectKind::group);
  EXPECT_EQ(objs[3].path, "/index/build");
  EXPECT_EQ(objs[4].path, "/index/hist");
  EXPECT_EQ(objs[4].kind, ObjectKind::array);
  EXPECT_EQ(objs[4].shape, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(r.has("/index/build"));
  EXPECT_FALSE(r.has("/index/missing"));
  EXPECT_FALSE(r.has("/summary/below_a_dataset"));
}

// Expects `fn` to throw semskip::Error whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(ReportWriterErrors, ColumnsDisagreeOnRowCount) {
  ScratchDir dir;
  ReportWriter w(dir.file("r.h5"));
  Table t;
  t.add("a", std::vector<int64_t>{1, 2, 3}).add("b", std::vector<double>{1.0, 2.0});
  expect_error([&] { (void)t.n_rows(); }, {"'a' has 3 rows", "'b' has 2"});
  expect_error([&] { w.write_table("/summary", t); }, {"/summary", "r.h5.tmp", "'b' has 2"});
  // Nothing half-written stays behind.
  w.commit();
  ReportReader r(dir.file("r.h5"));
  EXPECT_FALSE(r.has("/summary"));
}

TEST(ReportWriterErrors, BadTablesAndPaths) {
  ScratchDir dir;
  ReportWriter w(dir.file("r.h5"));
  expect_error([&] { w.write_table("/t", Table()); }, {"at least one column"});
  expect_error([&] { Table().add("a", std::vector<int64_t>{}).add("a", std::vector<double>{}); }, {"column 'a'"});
  expect_error([&] { Table().add("", std::vector<int64_t>{}); }, {"empty"});
  expect_error([&] { w.write_table("summary", Table().add("a", std::vector<int64_t>{1})); }, {"absolute"});
  expect_error([&] { w.write_table("/a//b", Table().add("a", std::vector<int64_t>{1})); }, {"empty"});
  w.write_table("/summary", Table().add("a", std::vector<int64_t>{1}));
  expect_error([&] { w.write_table("/summary", Table().add("a", std::vector<int64_t>{1})); }, {"already written"});
  expect_error([&] { w.write_table("/summary/x", Table().add("a", std::vector<int64_t>{1})); }, {"not a group"});
  expect_error([&] { w.write_array("/m", {1, 2, 3}, {2, 2}); }, {"/m", "4 values, got 3"});
  expect_error([&] { w.write_array("/m", {1}, {}); }, {"dimensions"});
  expect_error([&] { w.set_attr("x", int64_t{1}, "/nowhere"); }, {"no object '/nowhere'"});
  expect_error([&] { w.set_attr("x", std::string("bad \xff utf-8")); }, {"UTF-8"});
  expect_error([&] { w.set_attr("x", std::string("nul\0inside", 10)); }, {"NUL"});
  // Strict like Python's decoder, so whatever is written decodes in h5py: overlong '/',
  // a UTF-16 surrogate, a truncated sequence.
  expect_error([&] { w.set_attr("x", std::string("\xc0\xaf")); }, {"overlong"});
  expect_error([&] { w.set_attr("x", std::string("\xed\xa0\x80")); }, {"surrogate"});
  expect_error([&] { w.set_attr("x", std::string("ab\xe6\x97")); }, {"truncated"});
  expect_error([&] { w.write_table("/s", Table().add("s", std::vector<std::string>{"ok", "\xc3("})); },
               {"column 's' row 1", "UTF-8"});
  w.commit();
  expect_error([&] { w.set_attr("late", int64_t{1}); }, {"after commit"});
  expect_error([&] { w.commit(); }, {"after commit"});
}

TEST(ReportReaderErrors, MissingObjectsAndWrongKinds) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  {
    ReportWriter w(path);
    w.write_table("/summary", Table().add("a", std::vector<int64_t>{1}));
    w.write_array("/arr", {1.0}, {1});
    w.commit();
  }
  ReportReader r(path);
  expect_error([&] { r.read_table("/nope"); }, {"'/nope'", "no such table", "r.h5"});
  expect_error([&] { r.read_table("/arr"); }, {"not a table"});
  expect_error([&] { r.read_array("/summary"); }, {"not a numeric array"});
  expect_error([&] { r.attrs("/nope"); }, {"no such object"});
  expect_error([&] { ReportReader(dir.file("absent.h5")); }, {"no such file", "absent.h5"});
  std::FILE* f = std::fopen(dir.file("text.h5").c_str(), "w");
  std::fputs("plain text, not HDF5\n", f);
  std::fclose(f);
  expect_error([&] { ReportReader(dir.file("text.h5")); }, {"not an HDF5 file", "text.h5"});
}

}  // namespace
}  // namespace semskip::report
