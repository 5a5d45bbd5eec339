#include "trainer/metrics/model_flops.hpp"

#include <gtest/gtest.h>

#include "trainer/config/recipe.hpp"
#include "trainer/model/model_config.hpp"

namespace {

kiln::config::ModelConfig gpt2_small() {
  kiln::config::ModelConfig model;
  model.family = kiln::config::ModelFamily::gpt2;
  model.d_model = 768;
  model.n_layers = 12;
  model.n_heads = 12;
  model.n_kv_heads = 12;
  model.d_ff = 3072;
  model.max_seq_len = 1024;
  model.vocab_size = 50257;
  return model;
}

TEST(ModelFlops, LlamaCountsGqaSwiGluAndUntiedHead) {
  kiln::config::ModelConfig model;
  model.family = kiln::config::ModelFamily::llama;
  model.d_model = 64;
  model.n_layers = 2;
  model.n_heads = 4;
  model.n_kv_heads = 2;  // head_dim 16: k and v are 64x32
  model.d_ff = 128;
  model.max_seq_len = 64;
  model.vocab_size = 100;
  model.tie_embeddings = false;
  const std::int64_t block = 64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 2 * 64;
  EXPECT_EQ(kiln::model::parameter_count(kiln::model::from_recipe(model)), 100 * 64 * 2 + 2 * block + 64);
}

TEST(ModelFlops, TrainingFlopsFollowSixNPlusAttention) {
  const auto model = kiln::model::from_recipe(gpt2_small());
  const double matmul_weights = 12.0 * (4 * 768.0 * 768 + 2 * 768.0 * 3072) + 50257.0 * 768;
  EXPECT_DOUBLE_EQ(kiln::model::flops_per_token(model, 1024), 6 * matmul_weights + 12.0 * 12 * 768 * 1024);
  EXPECT_DOUBLE_EQ(kiln::metrics::model_flops_utilisation(1e9, 1000, 4e12), 0.25);
  EXPECT_EQ(kiln::metrics::model_flops_utilisation(1e9, 1000, 0), 0.0);
}

TEST(ModelFlops, CpuPeakEstimateIsPlausible) {
  const double peak = kiln::metrics::estimate_cpu_peak_flops(1);
  if (peak == 0) GTEST_SKIP() << "no clock rate in /proc/cpuinfo";
  EXPECT_GT(peak, 1e8);   // > 0.1 GFLOP/s per core
  EXPECT_LT(peak, 1e12);  // < 1 TFLOP/s per core
}

TEST(ModelFlops, MeasuredClockIsPlausible) {
#if defined(__x86_64__)
  const double hz = kiln::metrics::measured_cpu_clock_hz();
  EXPECT_GT(hz, 0.5e9);
  EXPECT_LT(hz, 7e9);  // above any shipping x86 clock: the add chain was not timed right
  EXPECT_EQ(kiln::metrics::measured_cpu_clock_hz(), hz);  // measured once per process
#else
  GTEST_SKIP() << "the clock is measured on x86-64 only";
#endif
}

}  // namespace
