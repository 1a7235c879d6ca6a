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

TEST(Descriptor, CanonicalFormOrdersKeysAsDocumentedAndWritesNumbersOneWay) {
  const Descriptor a = Descriptor::parse("residual:tau=0.950,p=2,r=7");
  const Descriptor b = Descriptor::parse("residual:p=2,r=7,tau=0.95");
  const Descriptor c = Descriptor::parse("residual: r = 07 , tau=9.5e-1, p=2");
  EXPECT_EQ(a.text(), "residual:p=2,r=7,tau=0.95");
  EXPECT_EQ(b.text(), a.text());
  EXPECT_EQ(c.text(), a.text());
  EXPECT_EQ(a.source(), "residual:tau=0.950,p=2,r=7");
  // Cache keys after the policy's own, in cache_policy_options.h's order; the values of
  // choices are left alone, the number of sample:<p> is canonical.
  EXPECT_EQ(Descriptor::parse("residual:admit=sample:0.50,cap=100,kdim=16,proj=pca,kv=mask,tau=1,r=8,p=2").text(),
            "residual:p=2,r=8,tau=1,kv=mask,proj=pca,kdim=16,cap=100,admit=sample:0.5");
  EXPECT_EQ(Descriptor::parse("plan:tau=0.9,beta=.05,p=2,evict=lfu").text(), "plan:p=2,beta=0.05,tau=0.9,evict=lfu");
  EXPECT_EQ(Descriptor::parse("static:layers=07+5").text(), "static:layers=7+5");  // list order kept
  EXPECT_EQ(Descriptor::parse(" none ").text(), "none");
  // Keys a policy does not document come last, alphabetically (the policy then refuses them).
  EXPECT_EQ(Descriptor::parse("random:zeta=1,alpha=2,rate=0.1").text(), "random:rate=0.1,alpha=2,zeta=1");
  // The canonical text parses back to itself.
  const Descriptor d = Descriptor::parse("residual:cap=8192,kdim=64,proj=pca,target=mlp,tau=0.98,r=8,p=2");
  EXPECT_EQ(d.text(), "residual:p=2,r=8,tau=0.98,target=mlp,proj=pca,kdim=64,cap=8192");
  EXPECT_EQ(Descriptor::parse(d.text()).text(), d.text());
  EXPECT_DOUBLE_EQ(a.require_double("tau"), 0.95);
}
