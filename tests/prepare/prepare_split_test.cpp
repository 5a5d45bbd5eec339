#include <gtest/gtest.h>

#include "data/dataset/prepare.hpp"

namespace {

using kiln::data::is_validation_document;

TEST(PrepareSplit, FractionIsRespectedAndDeterministic) {
  int validation = 0;
  constexpr int kDocuments = 100000;
  for (int i = 0; i < kDocuments; ++i) validation += is_validation_document(7, static_cast<std::uint64_t>(i), 0.05);
  EXPECT_NEAR(validation, kDocuments * 0.05, 300);  // ~4.4 standard deviations
  for (std::uint64_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(is_validation_document(7, i, 0.05), is_validation_document(7, i, 0.05));
    EXPECT_FALSE(is_validation_document(7, i, 0.0));
  }
}

TEST(PrepareSplit, SeedChangesTheSplit) {
  int differing = 0;
  for (std::uint64_t i = 0; i < 10000; ++i) {
    differing += is_validation_document(1, i, 0.5) != is_validation_document(2, i, 0.5);
  }
  EXPECT_GT(differing, 4000);
  EXPECT_LT(differing, 6000);
}

}  // namespace
