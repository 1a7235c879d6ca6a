#include <gtest/gtest.h>

#include "core/error.h"
#include "workload_test_util.h"
#include "workloads/workload_spec.h"

using namespace semskip;
using semskip::test::error_of;

TEST(WorkloadSpec, KindAloneTakesDefaultsAndTheShippedSample) {
  WorkloadSpec s = WorkloadSpec::parse("sharegpt");
  EXPECT_EQ(s.kind(), "sharegpt");
  EXPECT_FALSE(s.path_given());
  EXPECT_EQ(std::filesystem::path(s.path()).filename(), "sharegpt_sample.json");
  EXPECT_TRUE(std::filesystem::exists(s.path()));
  EXPECT_EQ(s.get("chat"), "auto");
  EXPECT_EQ(s.get("turns"), "first");
  EXPECT_EQ(s.output_len(), std::nullopt);  // "reference"
  EXPECT_EQ(s.max_requests(), std::nullopt);
  EXPECT_EQ(s.on_bad_line(), BadLinePolicy::error);
  EXPECT_EQ(s.arrivals(), "none");
  EXPECT_EQ(s.seed(), 0u);
}

TEST(WorkloadSpec, PathAndOptions) {
  WorkloadSpec s = WorkloadSpec::parse("text:/data/a:b.txt, chunk=256 ,min_chunk=8,max_requests=10");
  EXPECT_EQ(s.kind(), "text");
  EXPECT_EQ(s.path(), "/data/a:b.txt");  // a ':' in the path is kept
  EXPECT_EQ(s.get_int("chunk"), 256);
  EXPECT_EQ(s.get_int("min_chunk"), 8);
  EXPECT_EQ(s.max_requests(), 10);
  EXPECT_EQ(WorkloadSpec::parse("jsonl:path=x.jsonl").path(), "x.jsonl");
  WorkloadSpec g = WorkloadSpec::parse("synthetic:templates=50,zipf=1.2,seed=7");
  EXPECT_EQ(g.get_int("templates"), 50);
  EXPECT_DOUBLE_EQ(g.get_double("zipf"), 1.2);
  EXPECT_EQ(g.seed(), 7u);
  EXPECT_EQ(g.path(), "");
  EXPECT_EQ(WorkloadSpec::parse("synthetic,num=3").get_int("num"), 3);
}

TEST(WorkloadSpec, DescribeRoundTrips) {
  for (const char* text : {"sharegpt:x.json,turns=all,output_len=32", "synthetic:zipf=0.5",
                           "vllm-random:input_len=16,arrivals=poisson:2.5",
                           "lmsys:l.jsonl,language=English,on_bad_line=skip",
                           "pairs:p.jsonl,order=origins-first", "text:t.txt,chunk=64",
                           "jsonl:j.jsonl,arrivals=trace:arrival_s", "vllm-sonnet:poem.txt,num=3",
                           "vllm-prefix-repetition:num_prefixes=2"}) {
    WorkloadSpec s = WorkloadSpec::parse(text);
    const std::string d = s.describe();
    EXPECT_EQ(WorkloadSpec::parse(d).describe(), d) << text;
  }
  EXPECT_EQ(WorkloadSpec::parse("text:t.txt,chunk=64").describe(),
            "text:t.txt,chunk=64,min_chunk=2,max_requests=all,on_bad_line=error,arrivals=none,"
            "seed=0,min_prompt=0,max_prompt=0,min_output=0,max_total=0");
}

TEST(WorkloadSpec, OverridesWin) {
  WorkloadSpec s = WorkloadSpec::parse("jsonl,max_requests=5,on_bad_line=skip");
  s.apply({std::optional<int64_t>(2), std::string("error"), std::string("poisson:4"), 9});
  EXPECT_EQ(s.max_requests(), 2);
  EXPECT_EQ(s.on_bad_line(), BadLinePolicy::error);
  EXPECT_EQ(s.arrivals(), "poisson:4");
  EXPECT_EQ(s.seed(), 9u);
}

TEST(WorkloadSpec, BadSpecsNameTheProblem) {
  auto msg = [](const char* text) { return error_of([&] { WorkloadSpec::parse(text); }); };
  EXPECT_NE(msg("sharegtp:x.json").find("unknown workload kind 'sharegtp'"), std::string::npos);
  EXPECT_NE(msg("text:t.txt,chunks=3").find("unknown option 'chunks' for kind 'text'"),
            std::string::npos);
  EXPECT_NE(msg("text:t.txt,chunk=3x").find("option chunk: '3x' is not an integer"),
            std::string::npos);
  EXPECT_NE(msg("sharegpt:x.json,turns=some").find("'some' is not one of first, all"),
            std::string::npos);
  EXPECT_NE(msg("synthetic:foo.txt").find("reads no file"), std::string::npos);
  EXPECT_NE(msg("text:t.txt,a.txt").find("is not key=value"), std::string::npos);
  EXPECT_NE(msg("jsonl,arrivals=poisson:-1").find("rate must be > 0"), std::string::npos);
  EXPECT_NE(msg("jsonl,arrivals=uniform").find("is not none, poisson:<rate> or trace:<field>"),
            std::string::npos);
  EXPECT_NE(msg("jsonl,max_requests=-3").find("must be 'all' or >= 0"), std::string::npos);
  EXPECT_NE(msg("jsonl,output_len=long").find("option output_len: 'long' is not an integer"),
            std::string::npos);
  EXPECT_NE(msg(":x").find("no kind"), std::string::npos);
  EXPECT_NE(msg("vllm-random:zipf=1").find("unknown option 'zipf'"), std::string::npos);
}

TEST(WorkloadSpec, EveryKindHasALoaderAndItsSampleExists) {
  for (const WorkloadKind& k : workload_kinds()) {
    WorkloadSpec s = WorkloadSpec::parse(k.name + ",max_requests=1");
    if (k.takes_path) {
      EXPECT_TRUE(std::filesystem::exists(s.path())) << k.name;
    }
    auto w = Workload::open(s, semskip::test::tiny_context());
    EXPECT_TRUE(w->next().has_value()) << k.name;
    EXPECT_FALSE(w->next().has_value()) << k.name;
  }
}
