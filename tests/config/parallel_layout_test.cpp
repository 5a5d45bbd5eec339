#include "trainer/config/parallel_layout.hpp"

#include <gtest/gtest.h>

#include <string>

#include "trainer/core/error.hpp"

namespace {

kiln::config::Recipe recipe_with(int tp, int pp, int dp, std::int64_t batch, std::int64_t micro) {
  kiln::config::Recipe recipe;
  recipe.parallel.tp = tp;
  recipe.parallel.pp = pp;
  recipe.parallel.dp = dp;
  recipe.train.batch_size = batch;
  recipe.train.micro_batch_size = micro;
  return recipe;
}

std::string layout_error(const kiln::config::Recipe& recipe, int world) {
  try {
    kiln::config::resolve_layout(recipe, world);
  } catch (const kiln::Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "layout resolved for world " << world;
  return "";
}

TEST(ParallelLayout, AutoDataParallelFillsTheWorld) {
  const auto layout = kiln::config::resolve_layout(recipe_with(2, 2, 0, 64, 4), 16);
  EXPECT_EQ(layout.dp, 4);
  EXPECT_EQ(layout.world_size(), 16);
  EXPECT_EQ(layout.micro_batches, 4);  // 64 sequences / (4 ranks * 4 per micro-batch)
}

TEST(ParallelLayout, ImpossibleLayoutsNameTheFix) {
  EXPECT_NE(layout_error(recipe_with(4, 1, 0, 64, 4), 6).find("launch a multiple of 4 ranks"),
            std::string::npos);
  EXPECT_NE(layout_error(recipe_with(1, 1, 2, 64, 4), 4).find("parallel.dp: the recipe asks for dp = 2"),
            std::string::npos);
  EXPECT_NE(layout_error(recipe_with(1, 1, 0, 24, 4), 4).find("make train.batch_size a multiple of 16"),
            std::string::npos);
  auto mismatched = recipe_with(1, 1, 0, 64, 4);
  mismatched.parallel.micro_batches = 3;
  EXPECT_NE(layout_error(mismatched, 4).find("parallel.micro_batches: 3 disagrees"), std::string::npos);
}

TEST(ParallelLayout, JsonRoundTrip) {
  const auto layout = kiln::config::resolve_layout(recipe_with(2, 1, 0, 32, 2), 8);
  EXPECT_EQ(kiln::config::layout_from_json(kiln::config::layout_to_json(layout)), layout);
}

}  // namespace
