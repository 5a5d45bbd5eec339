// train.device and train.attention at load time: every device loads (whether it is there, and
// whether cuDNN runs on it, is the trainer's question); cuDNN attention with a head dim it cannot
// take is refused naming the key and the fix.
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
    const std::vector<std::string> overrides = {override_text};
    kiln::config::recipe_from_yaml_text(kRecipe, "recipes/device.yaml", overrides);
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "";
}

std::string refusal(const std::vector<std::string>& overrides) {
  try {
    kiln::config::recipe_from_yaml_text(kRecipe, "recipes/device.yaml", overrides);
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "";
}

TEST(RecipeDevice, CudnnAttentionWithAHeadDimNotAMultipleOf8IsRefusedNamingTheKey) {
  EXPECT_EQ(refusal("train.attention=cudnn"), "");  // head dim 16
  const std::string message = refusal(std::vector<std::string>{"train.attention=cudnn", "model.d_model=60"});
  EXPECT_NE(message.find("train.attention"), std::string::npos) << message;
  EXPECT_NE(message.find("head dim"), std::string::npos) << message;
  EXPECT_NE(message.find("set train.attention: flash"), std::string::npos) << "the fix is named: " << message;
  EXPECT_EQ(refusal("model.d_model=60"), "") << "kiln's own attention takes any head dim";
}

TEST(RecipeDevice, CpuCudaAutoAndFlashLoad) {
  EXPECT_EQ(refusal("train.device=cpu"), "");
  EXPECT_EQ(refusal("train.device=cuda"), "");
  EXPECT_EQ(refusal("train.device=auto"), "");
  EXPECT_EQ(refusal("train.attention=flash"), "");
}

}  // namespace
