// Until the CUDA backend exists, a recipe that asks for a GPU is refused instead of training on
// the CPU behind the user's back (issue 11, item 8).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "trainer/config/recipe.hpp"
#include "trainer/core/error.hpp"

namespace {

constexpr const char* kRecipe = R"(model: {family: gpt2, d_model: 64, n_layers: 2, n_heads: 4, max_seq_len: 64}
data: {tokenizer: t.json, train: train.h5}
train: {steps: 10, batch_size: 8}
optim: {lr: 1.0e-3}
)";

std::string refusal(const std::string& override_text) {
  try {
    const std::vector<std::string> overrides{override_text};
    kiln::config::recipe_from_yaml_text(kRecipe, "recipes/device.yaml", overrides);
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "";
}

TEST(RecipeDevice, CudaIsRefusedNamingTheKey) {
  const std::string message = refusal("train.device=cuda");
  EXPECT_NE(message.find("train.device"), std::string::npos) << message;
  EXPECT_NE(message.find("train.device: cpu"), std::string::npos) << "the fix is named: " << message;
}

TEST(RecipeDevice, CudnnAttentionIsRefusedNamingTheKey) {
  const std::string message = refusal("train.attention=cudnn");
  EXPECT_NE(message.find("train.attention"), std::string::npos) << message;
}

TEST(RecipeDevice, CpuAutoAndFlashLoad) {
  EXPECT_EQ(refusal("train.device=cpu"), "");
  EXPECT_EQ(refusal("train.device=auto"), "");
  EXPECT_EQ(refusal("train.attention=flash"), "");
}

}  // namespace
