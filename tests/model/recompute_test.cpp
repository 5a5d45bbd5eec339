// Activation recomputation (train.recompute, trainer/model/activations.hpp): selective and full
// give the loss and every gradient of `none` to the last bit, for both families on a packed
// batch with a loss mask, in f32 and f64, and keep less: none > selective > full, with the
// saving the arena's slots account for.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/model/model_testing.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::model {
namespace {

struct TrainedOnce {
  double loss = 0;
  std::vector<double> grads;
  std::size_t activation_bytes = 0;
};

TrainedOnce train_once(const ModelConfig& config, DType dtype, Recompute recompute) {
  const auto batch = testing::packed_batch(config.vocab_size, 21);
  Transformer model(config, dtype);
  model.set_recompute(recompute);
  testing::randomize_parameters(model, 22, 0.2);
  model.zero_grads();
  const ops::LossSum loss = model.forward(batch.view());
  model.backward(1.0 / static_cast<double>(loss.count));
  return {loss.mean(), testing::to_vector(model.parameters().grads()), model.activation_bytes()};
}

TEST(Recompute, SelectiveAndFullGiveTheSameBitsAndKeepLess) {
  for (const ModelConfig& config : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    for (const DType dtype : {DType::F32, DType::F64}) {
      SCOPED_TRACE(std::string(family_name(config.family)) + " " + std::string(dtype_name(dtype)));
      const TrainedOnce none = train_once(config, dtype, Recompute::none);
      const TrainedOnce selective = train_once(config, dtype, Recompute::selective);
      const TrainedOnce full = train_once(config, dtype, Recompute::full);
      for (const TrainedOnce* run : {&selective, &full}) {
        EXPECT_EQ(run->loss, none.loss);
        ASSERT_EQ(run->grads.size(), none.grads.size());
        EXPECT_EQ(std::memcmp(run->grads.data(), none.grads.data(), none.grads.size() * sizeof(double)), 0)
            << "gradients differ";
      }
      double largest = 0;
      for (const double g : none.grads) largest = std::max(largest, std::fabs(g));
      EXPECT_GT(largest, 0.0) << "a test whose gradients are all zero shows nothing";
      EXPECT_GT(none.activation_bytes, selective.activation_bytes);
      EXPECT_GT(selective.activation_bytes, full.activation_bytes);
    }
  }
}

// The saving is what the dropped slots held: selective drops, per block beyond the working
// one, attn_norm, mlp_norm [B, T, C] and mlp_act [B, T, F].
TEST(Recompute, SelectiveSavesTheNormOutputsAndTheMlpActivationPerBlock) {
  const ModelConfig config = testing::tiny_llama();
  const TrainedOnce none = train_once(config, DType::F64, Recompute::none);
  const TrainedOnce selective = train_once(config, DType::F64, Recompute::selective);
  const std::int64_t B = 2, T = 8, layers = config.n_layers;
  const auto aligned = [](std::int64_t bytes) { return (bytes + 63) / 64 * 64; };
  const std::int64_t per_block = 2 * aligned(B * T * config.d_model * 8) + aligned(B * T * config.d_ff * 8);
  EXPECT_EQ(static_cast<std::int64_t>(none.activation_bytes - selective.activation_bytes), (layers - 1) * per_block);
}

}  // namespace
}  // namespace kiln::model
