// ExpertPartition: contiguous ranges, the remainder on the first ranks.
#include <gtest/gtest.h>

#include "core/error.h"
#include "comm/expert_partition.h"

namespace semskip {
namespace {

TEST(ExpertPartition, EvenSplit) {
  const ExpertPartition p(8, 4);
  EXPECT_TRUE(p.even());
  EXPECT_EQ(p.counts(), (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(p.first(3), 6);
  EXPECT_EQ(p.owner(0), 0);
  EXPECT_EQ(p.owner(5), 2);
  EXPECT_EQ(p.owner(7), 3);
  EXPECT_EQ(p.describe(), "8 experts over 4 ranks: [0,2) [2,4) [4,6) [6,8)");
}

TEST(ExpertPartition, UnevenSplitsPutTheRemainderFirst) {
  const ExpertPartition p(4, 3);  // the mixtral fixture over 3 ranks
  EXPECT_FALSE(p.even());
  EXPECT_EQ(p.counts(), (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(p.describe(), "4 experts over 3 ranks: [0,2) [2,3) [3,4)");
  const ExpertPartition q(8, 3);
  EXPECT_EQ(q.describe(), "8 experts over 3 ranks: [0,3) [3,6) [6,8)");
  const std::vector<int> owners = {0, 0, 0, 1, 1, 1, 2, 2};
  for (int64_t e = 0; e < 8; ++e) EXPECT_EQ(q.owner(e), owners[static_cast<size_t>(e)]) << "expert " << e;
}

TEST(ExpertPartition, MoreRanksThanExperts) {
  const ExpertPartition p(2, 4);
  EXPECT_EQ(p.counts(), (std::vector<int64_t>{1, 1, 0, 0}));
  EXPECT_EQ(p.owner(1), 1);
  EXPECT_EQ(p.first(2), 2);
  EXPECT_EQ(p.first(3), 2);
}

TEST(ExpertPartition, OwnerAndRangesAgreeEverywhere) {
  for (int64_t e = 1; e <= 17; ++e) {
    for (int r = 1; r <= 9; ++r) {
      const ExpertPartition p(e, r);
      int64_t next = 0;
      for (int k = 0; k < r; ++k) {
        EXPECT_EQ(p.first(k), next);
        for (int64_t x = p.first(k); x < p.first(k) + p.count(k); ++x) EXPECT_EQ(p.owner(x), k);
        next += p.count(k);
        EXPECT_LE(p.count(k), (e + r - 1) / r);
        EXPECT_GE(p.count(k), e / r);
      }
      EXPECT_EQ(next, e);
    }
  }
}

TEST(ExpertPartition, RefusesEmptyShapes) {
  EXPECT_THROW(ExpertPartition(0, 2), Error);
  EXPECT_THROW(ExpertPartition(4, 0), Error);
}

}  // namespace
}  // namespace semskip
