#include "trainer/checkpoint/checkpoint_names.hpp"

#include <gtest/gtest.h>

namespace {

using namespace kiln::checkpoint;

TEST(CheckpointNames, StepDirectoriesRoundTrip) {
  EXPECT_EQ(step_dir_name(100), "step_00000100");
  EXPECT_EQ(step_dir_name(123456789), "step_123456789");
  EXPECT_EQ(parse_step_dir_name("step_00000100"), 100);
  EXPECT_EQ(parse_step_dir_name("step_123456789"), 123456789);
  EXPECT_EQ(parse_step_dir_name("step_00000100.tmp"), std::nullopt);
  EXPECT_EQ(parse_step_dir_name("step_100"), std::nullopt);
  EXPECT_EQ(parse_step_dir_name("latest"), std::nullopt);
  EXPECT_EQ(parse_temporary_step_dir_name("step_00000100.tmp"), 100);
  EXPECT_EQ(parse_temporary_step_dir_name("step_00000100"), std::nullopt);
}

TEST(CheckpointNames, RankFiles) {
  EXPECT_EQ(rank_file_name(3), "rank_00003.h5");
  EXPECT_TRUE(is_rank_file_name("rank_00003.h5"));
  EXPECT_FALSE(is_rank_file_name("rank_.h5"));
  EXPECT_FALSE(is_rank_file_name("meta.json"));
}

}  // namespace
