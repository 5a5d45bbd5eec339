// train.precision: fp32 (the default) or bf16; anything else, and bf16 with a layout it cannot
// train yet, is refused with a message naming the key.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/config/minimal_recipe.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/core/error.hpp"

namespace {

using kiln::config::Precision;

kiln::config::Recipe load(const std::vector<std::string>& overrides) {
  return kiln::config::recipe_from_yaml_text(kiln::testing::kMinimalRecipe, "recipes/precision.yaml", overrides);
}

std::string refusal(const std::vector<std::string>& overrides) {
  try {
    load(overrides);
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "";
}

TEST(RecipePrecision, AutoByDefaultBf16OrFp32WhenAsked) {
  EXPECT_EQ(load({}).train.precision, Precision::auto_select);  // bf16 on CUDA, fp32 on the CPU
  EXPECT_EQ(load({"train.precision=auto"}).train.precision, Precision::auto_select);
  EXPECT_EQ(load({"train.precision=bf16"}).train.precision, Precision::bf16);
  EXPECT_EQ(load({"train.precision=fp32"}).train.precision, Precision::fp32);
  EXPECT_EQ(kiln::config::to_string(Precision::bf16), "bf16");
}

TEST(RecipePrecision, SavedRecipeKeepsThePrecision) {
  const auto recipe = load({"train.precision=bf16"});
  const auto again = kiln::config::recipe_from_json(kiln::config::recipe_to_json(recipe), "meta.json");
  EXPECT_EQ(again.train.precision, Precision::bf16);
  EXPECT_NE(kiln::config::recipe_to_yaml(recipe).find("precision: bf16"), std::string::npos);
}

TEST(RecipePrecision, UnknownValueNamesTheKeyAndTheChoices) {
  const std::string message = refusal({"train.precision=fp16"});
  EXPECT_NE(message.find("train.precision"), std::string::npos) << message;
  EXPECT_NE(message.find("bf16"), std::string::npos) << "the accepted values are listed: " << message;
}

// bf16 sums in the tp all-reduces need NCCL: refused on the CPU, left to CUDA ranks.
TEST(RecipePrecision, Bf16WithTensorOrPipelineParallelismIsRefusedOnTheCpu) {
  const std::string tp = refusal({"train.precision=bf16", "parallel.tp=2", "train.device=cpu"});
  EXPECT_NE(tp.find("train.precision"), std::string::npos) << tp;
  EXPECT_NE(tp.find("needs CUDA ranks"), std::string::npos) << tp;
  const std::string pp = refusal({"train.precision=bf16", "parallel.pp=2", "train.device=cpu"});
  EXPECT_NE(pp.find("parallel.pp = 2"), std::string::npos) << pp;
  EXPECT_EQ(refusal({"train.precision=bf16", "parallel.tp=2", "train.device=cuda"}), "");
  // fp32 with the same layouts is not refused for its precision.
  EXPECT_EQ(refusal({"parallel.tp=2", "train.device=cpu"}).find("train.precision"), std::string::npos);
  EXPECT_EQ(refusal({"train.precision=bf16", "parallel.dp=2", "parallel.zero=1", "train.micro_batch_size=4"}), "");
}

}  // namespace
