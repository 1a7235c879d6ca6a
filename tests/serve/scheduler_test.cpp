// The scheduler and its block pool driven without a model: hand-computed steps (chunking under
// the token budget, decodes first, whole prompts without chunked prefill, pre-emption of the
// sequence admitted last, max_concurrency), and invariants under random arrivals, lengths and
// budgets checked against an independent bookkeeping of every sequence.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "serve/block_manager.h"
#include "serve/scheduler.h"

using namespace semskip;
using namespace semskip::serve;

namespace {

SchedulerOptions opts(int64_t budget, int64_t seqs, int64_t blocks, int64_t block_size, int64_t max_len,
                      bool chunked = true, int64_t concurrency = 0) {
  SchedulerOptions o;
  o.max_num_batched_tokens = budget;
  o.max_num_seqs = seqs;
  o.num_kv_blocks = blocks;
  o.block_size = block_size;
  o.max_model_len = max_len;
  o.enable_chunked_prefill = chunked;
  o.max_concurrency = concurrency;
  return o;
}

std::vector<int64_t> news(const SchedulerOutput& out) {
  std::vector<int64_t> v;
  for (const ScheduledSeq& s : out.seqs) v.push_back(s.n_new);
  return v;
}

std::vector<int64_t> seqs_of(const SchedulerOutput& out) {
  std::vector<int64_t> v;
  for (const ScheduledSeq& s : out.seqs) v.push_back(s.seq);
  return v;
}

void complete_all(Scheduler& s, const SchedulerOutput& out) { s.complete(out, std::vector<bool>(out.seqs.size(), false)); }

}  // namespace

TEST(BlockManager, GrowsOnDemandFreesAndRefuses) {
  BlockManager bm(4, 3);
  EXPECT_EQ(bm.blocks_for(0), 0);
  EXPECT_EQ(bm.blocks_for(3), 1);
  EXPECT_EQ(bm.blocks_for(4), 2);
  bm.grow(7, 4);  // 2 blocks: 0, 1
  EXPECT_EQ(bm.table(7), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(bm.capacity(7), 6);
  EXPECT_EQ(bm.pool_slot(7, 4), 1 * 3 + 1);
  bm.grow(9, 3);  // block 2
  EXPECT_TRUE(bm.can_grow(7, 9));   // one more block for 7
  EXPECT_FALSE(bm.can_grow(7, 10)); // two more: only one free
  bm.grow(7, 9);
  EXPECT_EQ(bm.n_free(), 0);
  bm.release(7);  // 0, 1, 3 back; lowest first again
  EXPECT_EQ(bm.n_used(), 1);
  bm.grow(11, 1);
  EXPECT_EQ(bm.table(11), (std::vector<int64_t>{0}));
  EXPECT_THROW(BlockManager(0, 4), Error);
  EXPECT_THROW(BlockManager(4, 0), Error);
}

// Budget 10, chunked: a prompt of 25 goes in chunks 10, 10, 5 (the last samples), then decodes.
// A second request arriving meanwhile: the decode comes first, its prompt takes the rest.
TEST(Scheduler, ChunksUnderTheBudgetDecodesFirst) {
  Scheduler s(opts(10, 4, 64, 4, 64), {{25, 3, 0.0}, {12, 2, 0.25}});
  SchedulerOutput o = s.schedule(0.0);
  EXPECT_EQ(news(o), (std::vector<int64_t>{10}));
  EXPECT_TRUE(o.seqs[0].first);
  EXPECT_FALSE(o.seqs[0].samples);
  complete_all(s, o);
  o = s.schedule(0.1);
  EXPECT_EQ(o.seqs[0].n_computed, 10);
  EXPECT_EQ(news(o), (std::vector<int64_t>{10}));
  complete_all(s, o);
  o = s.schedule(0.2);
  EXPECT_EQ(news(o), (std::vector<int64_t>{5}));
  EXPECT_TRUE(o.seqs[0].samples);
  EXPECT_FALSE(o.seqs[0].decode);
  complete_all(s, o);
  EXPECT_EQ(s.n_output(0), 1);
  // Request 1 has arrived: seq 0's decode, then 9 of request 1's 12 prompt tokens.
  o = s.schedule(0.3);
  EXPECT_EQ(seqs_of(o), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(news(o), (std::vector<int64_t>{1, 9}));
  EXPECT_TRUE(o.seqs[0].decode && o.seqs[0].samples);
  EXPECT_EQ(o.seqs[0].n_computed, 25);
  EXPECT_FALSE(o.seqs[1].samples);
  complete_all(s, o);
  o = s.schedule(0.4);  // seq 0's last decode, seq 1's remaining 3 (samples)
  EXPECT_EQ(news(o), (std::vector<int64_t>{1, 3}));
  complete_all(s, o);
  EXPECT_EQ(s.status(0), Scheduler::Status::finished);
  EXPECT_EQ(s.n_output(0), 3);
  o = s.schedule(0.5);
  EXPECT_EQ(news(o), (std::vector<int64_t>{1}));
  complete_all(s, o);
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.schedule(0.6).empty());
  EXPECT_EQ(s.blocks().n_used(), 0);
}

// Without chunked prefill a prompt waits until the step's remaining budget holds it whole.
TEST(Scheduler, WholePromptsWithoutChunking) {
  Scheduler s(opts(30, 4, 64, 4, 30, /*chunked=*/false), {{5, 4, 0.0}, {27, 2, 0.0}});
  SchedulerOutput o = s.schedule(0.0);  // 5 + 27 > 30: only the first
  EXPECT_EQ(news(o), (std::vector<int64_t>{5}));
  complete_all(s, o);
  o = s.schedule(0.1);  // 1 decode + 27 = 28 <= 30
  EXPECT_EQ(seqs_of(o), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(news(o), (std::vector<int64_t>{1, 27}));
  EXPECT_TRUE(o.seqs[1].samples);
  // The budget must hold a max_model_len sequence whole.
  EXPECT_THROW(Scheduler(opts(29, 4, 64, 4, 30, false), {}), Error);
}

// A pool of 4 blocks of 4 slots: two sequences of 4 + 10 tokens cannot both hold their
// 13 slots, so the one admitted last is pre-empted, recomputes prompt + output when it is
// readmitted, and both finish.
TEST(Scheduler, PreemptsTheLastAdmittedAndResumes) {
  Scheduler s(opts(64, 4, 4, 4, 16), {{4, 10, 0.0}, {4, 10, 0.0}});
  std::vector<int64_t> outputs_at_preemption;
  int64_t recomputed = -1;
  for (int step = 0; step < 100 && !s.done(); ++step) {
    const SchedulerOutput o = s.schedule(0.01 * step);
    for (int64_t p : o.preempted) {
      EXPECT_EQ(p, 1);  // never the first admitted
      outputs_at_preemption.push_back(s.n_output(1));
    }
    for (const ScheduledSeq& q : o.seqs)
      if (q.seq == 1 && q.n_computed == 0 && !q.first) {
        // Readmitted: all its known tokens again, and the step samples its next token.
        recomputed = q.n_new;
        EXPECT_EQ(q.n_new, 4 + s.n_output(1));
        EXPECT_TRUE(q.samples);
      }
    complete_all(s, o);
    EXPECT_LE(s.blocks().n_used(), 4);
  }
  ASSERT_TRUE(s.done());
  EXPECT_FALSE(outputs_at_preemption.empty());
  EXPECT_GT(recomputed, 4);
  EXPECT_GE(s.n_preemptions(1), 1);
  EXPECT_EQ(s.n_preemptions(0), 0);
  EXPECT_EQ(s.n_output(0), 10);
  EXPECT_EQ(s.n_output(1), 10);
}

TEST(Scheduler, MaxConcurrencyHoldsArrivalsBack) {
  Scheduler s(opts(64, 4, 64, 4, 64, true, /*concurrency=*/1), {{3, 2, 0.0}, {3, 2, 0.0}});
  SchedulerOutput o = s.schedule(0.0);
  EXPECT_EQ(seqs_of(o), (std::vector<int64_t>{0}));
  EXPECT_EQ(s.n_waiting(), 0);  // the second is not in the queue yet
  complete_all(s, o);
  o = s.schedule(0.1);
  EXPECT_EQ(seqs_of(o), (std::vector<int64_t>{0}));
  complete_all(s, o);  // seq 0 finished
  o = s.schedule(0.2);
  EXPECT_EQ(seqs_of(o), (std::vector<int64_t>{1}));
  EXPECT_DOUBLE_EQ(s.queued_s(0), 0.0);
  EXPECT_DOUBLE_EQ(s.queued_s(1), 0.2);  // let in when a slot freed
}

TEST(Scheduler, RefusesOptionsThatCannotWork) {
  try {
    Scheduler(opts(64, 4, 3, 4, 16), {});
    FAIL() << "a pool smaller than one max_model_len sequence was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_kv_blocks = 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("max_model_len = 16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Scheduler(opts(0, 4, 64, 4, 16), {}), Error);
  EXPECT_THROW(Scheduler(opts(8, 0, 64, 4, 16), {}), Error);
  EXPECT_THROW(Scheduler(opts(8, 4, 64, 4, 16), {{10, 7, 0.0}}), Error);  // 17 > max_model_len
  EXPECT_THROW(Scheduler(opts(8, 4, 64, 4, 16), {{0, 7, 0.0}}), Error);
  EXPECT_THROW(Scheduler(opts(8, 4, 64, 4, 16), {{3, 7, -1.0}}), Error);
}

// Random workloads and budgets. An independent ledger per sequence (computed tokens, outputs,
// arrival) checks every step: budgets, arrivals, contiguous positions, sampling exactly at the
// last known token, recomputation from 0 after pre-emption, FIFO first admission, each request
// finishing exactly once; and pre-emption must have happened in the scarce-pool cases.
TEST(Scheduler, InvariantsUnderRandomWorkloads) {
  std::mt19937_64 rng(20261202);
  auto uni = [&](int64_t a, int64_t b) { return std::uniform_int_distribution<int64_t>(a, b)(rng); };
  int64_t total_preemptions = 0, scarce_cases = 0, scarce_with_preemption = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t block_size = uni(1, 8), max_len = uni(8, 80);
    const bool chunked = uni(0, 3) != 0;
    const int64_t budget = chunked ? uni(1, 96) : uni(max_len, max_len + 40);
    const int64_t max_seqs = uni(1, 8), concurrency = uni(0, 1) ? 0 : uni(1, 4);
    const int64_t min_blocks = (max_len + block_size - 1) / block_size;
    const bool scarce = uni(0, 1) == 1;
    const int64_t blocks = scarce ? min_blocks + uni(0, 2) : min_blocks * uni(2, 8);
    const int64_t n = uni(1, 24);
    std::vector<SeqSpec> specs;
    for (int64_t i = 0; i < n; ++i) {
      SeqSpec sp;
      sp.n_prompt = uni(1, max_len - 1);
      sp.max_new_tokens = uni(1, max_len - sp.n_prompt);
      sp.arrival_s = uni(0, 3) == 0 ? 0.0 : 0.001 * static_cast<double>(uni(0, 400));
      specs.push_back(sp);
    }
    Scheduler s(opts(budget, max_seqs, blocks, block_size, max_len, chunked, concurrency), specs);
    std::vector<int64_t> computed(n, 0), outputs(n, 0), finished(n, 0), first_order;
    std::vector<bool> stopped(n, false);
    double now = 0.0;
    int64_t steps = 0, preempted_here = 0;
    while (!s.done()) {
      ASSERT_LT(++steps, 100000) << "trial " << trial << ": the run does not end";
      const SchedulerOutput o = s.schedule(now);
      if (o.empty()) {
        const std::optional<double> next = s.next_arrival();
        ASSERT_TRUE(next.has_value()) << "trial " << trial << ": nothing scheduled, nothing to come";
        ASSERT_GT(*next, now);
        now = *next;
        continue;
      }
      for (int64_t p : o.preempted) {
        computed[static_cast<size_t>(p)] = 0;
        ++preempted_here;
      }
      ASSERT_LE(o.n_tokens, budget);
      ASSERT_LE(static_cast<int64_t>(o.seqs.size()), max_seqs);
      ASSERT_LE(s.blocks().n_used(), blocks);
      int64_t in_flight = s.n_waiting() + s.n_running();
      if (concurrency > 0) ASSERT_LE(in_flight, concurrency);
      std::set<int64_t> seen;
      int64_t sum = 0;
      std::vector<bool> stop;
      for (const ScheduledSeq& q : o.seqs) {
        const size_t i = static_cast<size_t>(q.seq);
        ASSERT_TRUE(seen.insert(q.seq).second);
        ASSERT_LE(specs[i].arrival_s, now);
        ASSERT_GE(q.n_new, 1);
        ASSERT_EQ(q.n_computed, computed[i]);
        const int64_t known = specs[i].n_prompt + outputs[i];
        ASSERT_LE(q.n_computed + q.n_new, known);
        ASSERT_EQ(q.samples, q.n_computed + q.n_new == known);
        ASSERT_GE(s.blocks().capacity(q.seq), q.n_computed + q.n_new);
        if (!chunked && q.n_computed == 0) ASSERT_EQ(q.n_new, known);
        if (q.first) first_order.push_back(q.seq);
        sum += q.n_new;
        // An end token now and then.
        stop.push_back(q.samples && uni(0, 9) == 0);
      }
      ASSERT_EQ(sum, o.n_tokens);
      s.complete(o, stop);
      for (size_t k = 0; k < o.seqs.size(); ++k) {
        const ScheduledSeq& q = o.seqs[k];
        const size_t i = static_cast<size_t>(q.seq);
        computed[i] += q.n_new;
        if (!q.samples) continue;
        ++outputs[i];
        if (stop[k] || outputs[i] == specs[i].max_new_tokens) {
          ++finished[i];
          stopped[i] = stop[k];
          ASSERT_EQ(s.status(q.seq), Scheduler::Status::finished);
        }
      }
      now += 0.001;
    }
    EXPECT_EQ(s.blocks().n_used(), 0);
    // FIFO: first admissions in arrival order (ties by index).
    std::vector<int64_t> by_arrival(n);
    for (int64_t i = 0; i < n; ++i) by_arrival[i] = i;
    std::stable_sort(by_arrival.begin(), by_arrival.end(),
                     [&](int64_t a, int64_t b) { return specs[a].arrival_s < specs[b].arrival_s; });
    EXPECT_EQ(first_order, by_arrival) << "trial " << trial;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(finished[i], 1) << "trial " << trial << " seq " << i;
      EXPECT_EQ(s.n_output(i), outputs[i]);
      if (!stopped[i]) EXPECT_EQ(outputs[i], specs[i].max_new_tokens);
    }
    int64_t counted = 0;
    for (int64_t i = 0; i < n; ++i) counted += s.n_preemptions(i);
    EXPECT_EQ(counted, preempted_here);
    total_preemptions += preempted_here;
    if (scarce && n >= 4) {
      ++scarce_cases;
      scarce_with_preemption += preempted_here > 0 ? 1 : 0;
    }
  }
  EXPECT_GT(total_preemptions, 0);
  EXPECT_GT(scarce_with_preemption, scarce_cases / 4) << scarce_with_preemption << " of " << scarce_cases;
}
