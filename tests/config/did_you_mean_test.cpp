#include "trainer/config/did_you_mean.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using kiln::config::closest_match;
using kiln::config::edit_distance;

TEST(DidYouMean, EditDistanceCountsInsertionsDeletionsSubstitutionsAndSwaps) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("lr", ""), 2u);
  EXPECT_EQ(edit_distance("lr", "lrr"), 1u);
  EXPECT_EQ(edit_distance("lr", "rl"), 1u);  // adjacent swap
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("n_head", "n_heads"), 1u);
}

TEST(DidYouMean, SuggestsOnlyPlausibleTypos) {
  const std::vector<std::string> keys = {"optim.lr", "optim.min_lr", "model.n_heads"};
  EXPECT_EQ(closest_match("optim.lrr", keys), "optim.lr");
  EXPECT_EQ(closest_match("model.n_head", keys), "model.n_heads");
  EXPECT_EQ(closest_match("optim.minlr", keys), "optim.min_lr");
  EXPECT_EQ(closest_match("completely.different", keys), std::nullopt);
}

}  // namespace
