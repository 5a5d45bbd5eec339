#include "trainer/core/random.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {

TEST(Random, Splitmix64MatchesReferenceSequence) {
  // First outputs of the reference splitmix64 (Vigna) from state 0.
  kiln::Rng rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(rng.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(rng.next(), 0x06C45D188009454FULL);
}

TEST(Random, BelowIsInRangeAndRoughlyUniform) {
  kiln::Rng rng(42);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const auto draw = rng.below(7);
    ASSERT_LT(draw, 7u);
    ++counts[draw];
  }
  for (int count : counts) EXPECT_NEAR(count, 10000, 500);
  for (int i = 0; i < 1000; ++i) {
    const int value = rng.between(-3, 3);
    EXPECT_GE(value, -3);
    EXPECT_LE(value, 3);
  }
}

TEST(Random, MixSeedSeparatesStreams) {
  EXPECT_NE(kiln::mix_seed(1, 2, 3), kiln::mix_seed(1, 3, 2));
  EXPECT_NE(kiln::mix_seed(1, 2), kiln::mix_seed(2, 1));
  EXPECT_EQ(kiln::mix_seed(5, 6, 7), kiln::mix_seed(5, 6, 7));
}

}  // namespace
