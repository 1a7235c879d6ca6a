// The timing protocol: order statistics by hand, warm-up runs untimed, every repetition timed.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "core/error.h"
#include "metrics/timing.h"

namespace semskip {
namespace {

TEST(Timing, SummaryIsTheOrderStatisticsOfTheSamples) {
  const TimingStats t = summarize_samples({0.5, 0.1, 0.3, 0.2});
  EXPECT_EQ(t.samples_s, (std::vector<double>{0.5, 0.1, 0.3, 0.2}));  // kept in run order
  EXPECT_DOUBLE_EQ(t.median_s, 0.25);  // even count: mean of the middle two
  EXPECT_DOUBLE_EQ(t.min_s, 0.1);
  EXPECT_DOUBLE_EQ(t.max_s, 0.5);
  EXPECT_DOUBLE_EQ(t.mean_s, 0.275);
  // Sample standard deviation: sqrt(Σ(x − 0.275)² / 3) = sqrt(0.0875 / 3).
  EXPECT_NEAR(t.stddev_s, std::sqrt(0.0875 / 3.0), 1e-12);
  // Percentiles interpolate between closest ranks: 90th at rank 2.7 of {0.1, 0.2, 0.3, 0.5}.
  EXPECT_NEAR(t.p90_s, 0.3 + 0.7 * 0.2, 1e-12);
  EXPECT_NEAR(t.p99_s, 0.3 + 0.97 * 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(t.spread(), (0.5 - 0.1) / 0.25);
  EXPECT_DOUBLE_EQ(t.rate(100.0), 400.0);
  const TimingStats one = summarize_samples({2.0});
  EXPECT_DOUBLE_EQ(one.median_s, 2.0);
  EXPECT_DOUBLE_EQ(one.stddev_s, 0.0);
  EXPECT_THROW(summarize_samples({}), Error);
}

TEST(Timing, WarmupRunsAreUntimedAndEveryRepetitionIsTimed) {
  int calls = 0;
  // Runs 1 and 2 (warm-up) sleep long; a timed sample that included them would show it.
  const TimingStats t = time_repeated(
      [&] {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(calls <= 2 ? 60 : 5));
      },
      {2, 3, c10::Device(c10::kCPU)});
  EXPECT_EQ(calls, 5);
  ASSERT_EQ(t.samples_s.size(), 3u);
  for (double s : t.samples_s) {
    EXPECT_GE(s, 0.005);
    EXPECT_LT(s, 0.050);
  }
  // The synchronisation runs before and after every timed run, never around warm-up runs.
  int syncs = 0, runs = 0;
  std::vector<int> syncs_at_run;
  time_repeated([&] { ++runs, syncs_at_run.push_back(syncs); }, 2, 3, [&] { ++syncs; });
  EXPECT_EQ(runs, 5);
  EXPECT_EQ(syncs, 6);
  EXPECT_EQ(syncs_at_run, (std::vector<int>{0, 0, 1, 3, 5}));
  EXPECT_THROW(time_repeated([] {}, {0, 0, c10::Device(c10::kCPU)}), Error);
  EXPECT_THROW(time_repeated([] {}, {-1, 1, c10::Device(c10::kCPU)}), Error);
}

}  // namespace
}  // namespace semskip
