#include <gtest/gtest.h>

#include "core/error.h"
#include "skip/descriptor.h"

using namespace semskip;

TEST(Descriptor, ParsesNameKeysAndLists) {
  Descriptor d = Descriptor::parse(" residual:p=2,r=7,tau=0.95,target=mlp ");
  EXPECT_EQ(d.name(), "residual");
  EXPECT_EQ(d.text(), "residual:p=2,r=7,tau=0.95,target=mlp");
  EXPECT_EQ(d.require_int("p"), 2);
  EXPECT_DOUBLE_EQ(d.require_double("tau"), 0.95);
  EXPECT_EQ(d.get_choice("target", "block", {"block", "mlp"}), "mlp");
  EXPECT_EQ(d.get_int("k", 1), 1);
  Descriptor s = Descriptor::parse("static:layers=5+7+2");
  EXPECT_EQ(s.get_int_list("layers"), (std::vector<int64_t>{5, 7, 2}));
  EXPECT_EQ(Descriptor::parse("none").name(), "none");
}

TEST(Descriptor, RejectsMalformedText) {
  EXPECT_THROW(Descriptor::parse(""), Error);
  EXPECT_THROW(Descriptor::parse(":p=1"), Error);
  EXPECT_THROW(Descriptor::parse("residual:"), Error);
  EXPECT_THROW(Descriptor::parse("residual:p"), Error);
  EXPECT_THROW(Descriptor::parse("residual:p=1,p=2"), Error);
  EXPECT_THROW(Descriptor::parse("residual:p=,r=2"), Error);
  Descriptor d = Descriptor::parse("residual:p=x,target=attn,zz=1");
  EXPECT_THROW(d.require_int("p"), Error);
  EXPECT_THROW(d.require_int("r"), Error);
  EXPECT_THROW(d.get_choice("target", "block", {"block", "mlp"}), Error);
  try {
    d.check_keys({"p", "target"});
    FAIL() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'zz'"), std::string::npos) << e.what();
  }
}
