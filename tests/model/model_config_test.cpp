// Model config: family traits, derived sizes, validation messages, parameter and FLOP counts.
#include "trainer/model/model_config.hpp"

#include <gtest/gtest.h>

#include <string>

#include "tests/model/model_testing.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/core/error.hpp"

namespace kiln::model {
namespace {

// GPT-2 small (124M) as published.
ModelConfig gpt2_small() {
  ModelConfig c = gpt2_config();
  c.vocab_size = 50257;
  c.d_model = 768;
  c.n_layers = 12;
  c.n_heads = 12;
  c.d_ff = 3072;
  c.max_seq_len = 1024;
  return c.resolved();
}

std::string validation_error(const ModelConfig& config) {
  try {
    config.resolved();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(ModelConfig, FamilyTraits) {
  const ModelConfig gpt2 = testing::tiny_gpt2();
  EXPECT_EQ(gpt2.norm(), NormKind::layernorm);
  EXPECT_EQ(gpt2.mlp(), MlpKind::gelu);
  EXPECT_TRUE(gpt2.has_biases());
  EXPECT_TRUE(gpt2.learned_positions());
  EXPECT_FALSE(gpt2.uses_rope());
  EXPECT_TRUE(gpt2.tie_embeddings);
  const ModelConfig llama = testing::tiny_llama();
  EXPECT_EQ(llama.norm(), NormKind::rmsnorm);
  EXPECT_EQ(llama.mlp(), MlpKind::swiglu);
  EXPECT_FALSE(llama.has_biases());
  EXPECT_FALSE(llama.learned_positions());
  EXPECT_TRUE(llama.uses_rope());
}

TEST(ModelConfig, DerivedSizes) {
  const ModelConfig llama = testing::tiny_llama();
  EXPECT_EQ(llama.head_dim, 4);
  EXPECT_EQ(llama.padded_vocab(), 64);
  EXPECT_EQ(llama.qkv_dim(), 16 + 2 * 8);
  EXPECT_EQ(llama.mlp_in_dim(), 48);
  ModelConfig padded = gpt2_small();
  EXPECT_EQ(padded.padded_vocab(), 50304);  // 393 * 128
  padded.tp = 2;
  EXPECT_EQ(padded.padded_vocab(), 50432);  // multiple of 256
  ModelConfig gpt2 = gpt2_config();
  gpt2.vocab_size = 10;
  gpt2.d_model = 8;
  gpt2.n_layers = 1;
  gpt2.n_heads = 2;
  gpt2.d_ff = 32;
  gpt2.max_seq_len = 4;
  const ModelConfig resolved = gpt2.resolved();
  EXPECT_EQ(resolved.n_kv_heads, 2);
  EXPECT_EQ(resolved.head_dim, 4);
}

TEST(ModelConfig, ValidationNamesTheField) {
  ModelConfig c = testing::tiny_llama();
  c.n_kv_heads = 3;
  EXPECT_NE(validation_error(c).find("n_kv_heads = 3 must divide n_heads = 4"), std::string::npos)
      << validation_error(c);
  c = testing::tiny_gpt2();
  c.n_kv_heads = 2;
  EXPECT_NE(validation_error(c).find("gpt2 has no grouped-query attention"), std::string::npos);
  c = testing::tiny_llama();
  c.head_dim = 5;
  EXPECT_NE(validation_error(c).find("even head_dim"), std::string::npos);
  c = testing::tiny_llama();
  c.rope.high_freq_factor = 0.5;
  EXPECT_NE(validation_error(c).find("low_freq_factor"), std::string::npos);
  c = testing::tiny_gpt2();
  c.vocab_size = 0;
  EXPECT_NE(validation_error(c).find("vocab_size = 0 must be positive"), std::string::npos);
  c = testing::tiny_llama();
  c.tp = 4;  // 2 kv heads cannot be split 4 ways
  EXPECT_NE(validation_error(c).find("divisible by tp = 4"), std::string::npos);
  EXPECT_EQ(validation_error(testing::tiny_llama()), "");
}

TEST(ModelConfig, ParameterCountMatchesPublishedGpt2) {
  EXPECT_EQ(parameter_count(gpt2_small()), 124439808);  // transformers' GPT2LMHeadModel
}

TEST(ModelConfig, FlopsPerTokenFollowsPalmFormula) {
  // 6 N + 12 L H Dh T with N = block matmul weights + LM head over the real vocabulary.
  const double block = 768.0 * 2304 + 768.0 * 768 + 768.0 * 3072 + 3072.0 * 768;
  const double n = 12 * block + 50257.0 * 768;
  const double expected = 6 * n + 12.0 * 12 * 768 * 1024;
  EXPECT_DOUBLE_EQ(flops_per_token(gpt2_small(), 1024), expected);
  // SwiGLU has three matrices; GQA shrinks k and v.
  const ModelConfig llama = testing::tiny_llama();
  const double llama_block = 16.0 * 32 + 16.0 * 16 + 16.0 * 48 + 24.0 * 16;
  EXPECT_DOUBLE_EQ(flops_per_token(llama, 8),
                   6 * (2 * llama_block + 37.0 * 16) + 12.0 * 2 * 16 * 8);
}

TEST(ModelConfig, FromRecipe) {
  config::ModelConfig recipe;
  recipe.family = config::ModelFamily::llama;
  recipe.d_model = 64;
  recipe.n_layers = 2;
  recipe.n_heads = 4;
  recipe.n_kv_heads = 2;
  recipe.d_ff = 256;
  recipe.max_seq_len = 128;
  recipe.vocab_size = 300;
  recipe.rope_theta = 500000.0;
  recipe.rope_scaling.type = config::RopeScalingType::llama3;
  recipe.rope_scaling.factor = 32.0;
  recipe.tie_embeddings = false;
  const ModelConfig c = from_recipe(recipe, 2);
  EXPECT_EQ(c.family, Family::llama);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.padded_vocab(), 512);  // 300 rounded up to 128 * tp
  EXPECT_EQ(c.padded_vocab(), config::padded_vocab_size(recipe, 2));
  EXPECT_TRUE(c.rope.llama3_scaling);
  EXPECT_DOUBLE_EQ(c.rope.factor, 32.0);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_FALSE(c.tie_embeddings);
}

}  // namespace
}  // namespace kiln::model
