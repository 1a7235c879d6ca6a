// Descriptors: parsing, the round trip describe() ↔ make_index(), and the errors that bad
// descriptors give (each must name the descriptor and the problem).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "index/descriptor.h"
#include "index/index_factory.h"
#include "index/kokkos_scope.h"
#include "index_test_util.h"

namespace semskip {
namespace {

using test::error_of;

TEST(IndexDescriptor, SplitsBackendBodyAndParameters) {
  IndexDescriptor d = IndexDescriptor::parse("faiss:IVF1024,Flat|nprobe=16|train_size=4096");
  EXPECT_EQ(d.text(), "faiss:IVF1024,Flat|nprobe=16|train_size=4096");
  EXPECT_EQ(d.backend(), "faiss");
  EXPECT_EQ(d.body(), "IVF1024,Flat");
  ASSERT_EQ(d.remaining().size(), 2u);
  EXPECT_EQ(d.take_int("train_size", 0, 1), 4096);
  EXPECT_EQ(d.take("nprobe"), std::optional<std::string>("16"));
  EXPECT_EQ(d.take("nprobe"), std::nullopt);
  EXPECT_EQ(d.take_int("chunk", 123, 1), 123);
  EXPECT_TRUE(d.remaining().empty());
  d.check_all_taken("nothing");
}

TEST(IndexDescriptor, MalformedDescriptorsAreNamed) {
  struct Bad {
    std::string text, phrase;
  };
  for (const Bad& b : std::vector<Bad>{
           {"", "descriptor is empty"},
           {"flat", "has no backend"},
           {":flat", "has no backend"},
           {"torch:", "empty body"},
           {"torch:|device=cpu", "empty body"},
           {"torch:flat|device", "is not <key>=<value>"},
           {"torch:flat|device=", "is not <key>=<value>"},
           {"torch:flat|=cpu", "is not <key>=<value>"},
           {"torch:flat|device=cpu|device=cpu", "'device' is given twice"},
           {"torch:flat |device=cpu", "contains whitespace"},
       }) {
    const std::string msg = error_of([&] { IndexDescriptor::parse(b.text); });
    EXPECT_CONTAINS(msg, b.phrase);
    if (!b.text.empty()) EXPECT_CONTAINS(msg, "'" + b.text + "'");
  }
}

TEST(IndexFactory, DescriptorsRoundTrip) {
  std::vector<std::string> good = {"torch:flat", "torch:flat|device=cpu", "torch:flat|chunk=64",
                                   "torch:flat|chunk=64|device=cpu"};
#ifdef SEMSKIP_WITH_KOKKOS
  good.push_back("kokkos:flat");
  good.push_back("kokkos:flat|chunk=128");
#endif
#ifdef SEMSKIP_WITH_FAISS
  for (const char* d : {"faiss:Flat", "faiss:IVF16,Flat", "faiss:IVF16,Flat|nprobe=4",
                        "faiss:IVF16,Flat|nprobe=4|train_size=100", "faiss:IVF16,SQ8|nprobe=2",
                        "faiss:IVF16,PQ4x4|nprobe=2", "faiss:HNSW8", "faiss:HNSW8|efSearch=40",
                        "faiss:HNSW8,SQ8", "faiss:PQ4", "faiss:SQ8", "faiss:IVF16,Flat|max_codes=500"})
    good.push_back(d);
#endif
  for (const std::string& d : good) {
    auto index = make_index(d, 16);
    EXPECT_EQ(index->describe(), d);
    EXPECT_EQ(make_index(index->describe(), 16)->describe(), d);
  }
}

TEST(IndexFactory, BadDescriptorsGiveClearErrors) {
  struct Bad {
    std::string text, phrase;
  };
  std::vector<Bad> bad = {
      {"annoy:flat", "unknown backend 'annoy'"},
      {"torch:hnsw", "the torch backend has only 'flat'"},
      {"torch:flat|devcie=cpu", "unknown parameter 'devcie'"},
      {"torch:flat|chunk=0", "chunk=0 must be ≥ 1"},
      {"torch:flat|chunk=many", "'many' is not an integer"},
      {"torch:flat|device=mps", "device 'mps' is not cpu, cuda"},
      {"torch:flat|device=gpu", "device 'gpu' is not cpu, cuda"},
      {"torch:flat|dtype=fp8", "dtype 'fp8' is not fp32, fp16 or bf16"},
      {"torch:flat|group=8", "group applies to dtype=fp16 or bf16 only"},
      {"torch:flat|dtype=bf16|group=3", "group=3 must be a power of two in 1..1024"},
      {"torch:flat|dtype=bf16|group=2048", "group=2048 must be a power of two"},
      {"torch:flat|dtype=bf16|fused=0", "fused=0 applies to dtype=fp16 or bf16 on a CUDA device"},
      {"torch:flat|fused=1", "fused=1 applies to dtype=fp16 or bf16 on a CUDA device"},
      {"torch:flat|fused=2", "fused=2 must be auto, 0 or 1"},
      {"torch:flat|fused=yes", "fused=yes must be auto, 0 or 1"},
  };
  if (!at::hasCUDA()) bad.push_back({"torch:flat|device=cuda", "needs a CUDA build"});
#ifdef SEMSKIP_WITH_KOKKOS
  bad.push_back({"kokkos:ivf", "the kokkos backend has only 'flat'"});
  bad.push_back({"kokkos:flat|device=cpu", "unknown parameter 'device'"});
#else
  bad.push_back({"kokkos:flat", "-DSEMSKIP_WITH_KOKKOS=ON"});
#endif
#ifdef SEMSKIP_WITH_FAISS
  bad.push_back({"faiss:IVF16,Bogus", "FAISS index_factory failed"});
  bad.push_back({"faiss:HNSW8|nprobe=4", "nprobe applies to IVF indexes only"});
  bad.push_back({"faiss:Flat|efSearch=4", "efSearch applies to HNSW indexes only"});
  bad.push_back({"faiss:IVF16,Flat|nprobe=17", "nprobe=17 must be in 1..nlist=16"});
  bad.push_back({"faiss:IVF16,Flat|nprobe=0", "nprobe=0 must be in 1..nlist=16"});
  bad.push_back({"faiss:Flat|train_size=100", "needs no training"});
  bad.push_back({"faiss:IVF64,Flat|train_size=10", "train_size=10 is too small"});
  bad.push_back({"faiss:PQ4|train_size=100", "needs at least that many keys"});
  bad.push_back({"faiss:Flat|frobnicate=1", "unknown parameter 'frobnicate'"});
  bad.push_back({"faiss:LSH", "FAISS index_factory failed"});  // L2 only in FAISS
  bad.push_back({"faiss:PQ4x4fs", "which has no lookup-cost formula"});
  bad.push_back({"faiss:IVF16,PQ4x4fs", "an IVF variant without a lookup-cost formula"});
  bad.push_back({"faiss:IVF16_HNSW8,Flat", "coarse quantizer is not flat"});
#else
  bad.push_back({"faiss:Flat", "-DSEMSKIP_WITH_FAISS=ON"});
#endif
  for (const Bad& b : bad) {
    const std::string msg = error_of([&] { make_index(b.text, 16); });
    EXPECT_CONTAINS(msg, b.phrase);
    EXPECT_CONTAINS(msg, b.text);
  }
  EXPECT_CONTAINS(error_of([&] { make_index("torch:flat", 0); }), "dimension must be positive");
}

TEST(IndexFactory, ListsCompiledBackends) {
  const std::vector<std::string> b = index_backends();
  EXPECT_NE(std::find(b.begin(), b.end(), "torch"), b.end());
#ifdef SEMSKIP_WITH_FAISS
  EXPECT_NE(std::find(b.begin(), b.end(), "faiss"), b.end());
#endif
#ifdef SEMSKIP_WITH_KOKKOS
  EXPECT_NE(std::find(b.begin(), b.end(), "kokkos"), b.end());
#endif
#ifdef SEMSKIP_WITH_KOKKOS
  // The space kokkos: runs on is named, whichever Kokkos backend the build has.
  const std::string space = kokkos_execution_space();
  EXPECT_TRUE(space == "Serial" || space == "OpenMP" || space == "Threads" || space == "Cuda" ||
              space == "HIP") << space;
#else
  EXPECT_EQ(kokkos_execution_space(), "none");
#endif
#ifdef SEMSKIP_WITH_FAISS_GPU
  EXPECT_NE(std::find(b.begin(), b.end(), "faiss-gpu"), b.end());
#else
  EXPECT_EQ(std::find(b.begin(), b.end(), "faiss-gpu"), b.end());
  EXPECT_CONTAINS(error_of([&] { make_index("faiss-gpu:Flat", 4); }), "FAISS_ENABLE_GPU");
#endif
  EXPECT_CONTAINS(error_of([&] { make_index("nope:flat", 4); }), "known: faiss, faiss-gpu, torch, kokkos");
}

}  // namespace
}  // namespace semskip
