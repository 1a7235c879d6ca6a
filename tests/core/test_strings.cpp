#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/strings.h"

using namespace semskip;

TEST(Strings, SplitKeepsEmptyFields) {
  EXPECT_EQ(split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(split("", ','), (std::vector<std::string>{""}));
  EXPECT_EQ(join({"x", "y", "z"}, "+"), "x+y+z");
  EXPECT_EQ(trim("  p=2 \n"), "p=2");
}

TEST(Strings, StrictNumbers) {
  EXPECT_EQ(parse_int("42", "k"), 42);
  EXPECT_EQ(parse_int(" -7 ", "k"), -7);
  EXPECT_DOUBLE_EQ(parse_double("0.95", "tau"), 0.95);
  EXPECT_THROW(parse_int("4x", "option --k"), Error);
  EXPECT_THROW(parse_double("", "tau"), Error);
  try {
    parse_int("12.5", "option --k");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("option --k: '12.5' is not an integer"), std::string::npos);
  }
}

TEST(DType, NamesRoundTrip) {
  for (DType d : {DType::fp32, DType::bf16, DType::fp16}) EXPECT_EQ(parse_dtype(dtype_name(d), "x"), d);
  EXPECT_EQ(parse_dtype("bfloat16", "x"), DType::bf16);
  EXPECT_THROW(parse_dtype("int8", "x"), Error);
}

#include "core/paths.h"

TEST(Paths, EmbeddedModelsAreFound) {
  std::string dir = embedded_model_dir("tiny-dense");
  EXPECT_EQ(read_file(dir + "/config.json").find("\"qwen2\"") != std::string::npos, true);
  EXPECT_THROW(embedded_model_dir("no-such-model"), Error);
}
