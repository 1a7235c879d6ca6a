// Kokkos is initialised once for the whole test program and finalised after the last test,
// once every index (and so every Kokkos view) is gone.
#include <gtest/gtest.h>

#include <memory>

#include "index/kokkos_scope.h"

namespace {

class KokkosEnvironment : public testing::Environment {
 public:
  void SetUp() override { scope_ = std::make_unique<semskip::KokkosScope>(); }
  void TearDown() override { scope_.reset(); }

 private:
  std::unique_ptr<semskip::KokkosScope> scope_;
};

testing::Environment* const kKokkos = testing::AddGlobalTestEnvironment(new KokkosEnvironment);

}  // namespace
