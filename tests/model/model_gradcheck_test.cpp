// Whole-model gradient checks in double: the explicit backward of both families against
// central finite differences of the loss, with a loss mask and packed document boundaries.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tests/model/model_testing.hpp"

namespace kiln::model {
namespace {

using testing::OwnedBatch;

// Mean loss over counted tokens, as a trainer would report it.
double mean_loss(Transformer& model, const Batch& batch) { return model.forward(batch).mean(); }

struct GradientFixture {
  Transformer model;
  OwnedBatch batch;
  std::vector<double> analytic;  // flat gradient of the mean loss
};

GradientFixture make_fixture(const ModelConfig& config, std::uint64_t seed) {
  GradientFixture f{
      Transformer(config, DType::F64), testing::packed_batch(config.vocab_size, seed), {}};
  testing::randomize_parameters(f.model, seed, 0.3);
  f.model.zero_grads();
  const ops::LossSum loss = f.model.forward(f.batch.view());
  EXPECT_GT(loss.count, 0);
  f.model.backward(1.0 / static_cast<double>(loss.count));
  f.analytic = testing::to_vector(f.model.parameters().grads());
  return f;
}

double central_difference(Transformer& model, const Batch& batch, std::int64_t flat_index,
                          double step) {
  auto* values = model.parameters().values().data<double>();
  const double saved = values[flat_index];
  values[flat_index] = saved + step;
  const double plus = mean_loss(model, batch);
  values[flat_index] = saved - step;
  const double minus = mean_loss(model, batch);
  values[flat_index] = saved;
  return (plus - minus) / (2.0 * step);
}

// A few elements of every parameter tensor (first, last and spread in between, real rows
// only) against central differences.
void check_every_tensor(GradientFixture& f) {
  const ParameterStore& store = f.model.parameters();
  const Batch batch = f.batch.view();
  int checked = 0;
  for (const ParameterInfo& info : store.infos()) {
    const std::int64_t real = info.export_shape().numel();
    for (int sample = 0; sample < 5; ++sample) {
      const std::int64_t element = sample * (real - 1) / 4;
      const std::int64_t flat = info.offset + element;
      const double numeric = central_difference(f.model, batch, flat, 1e-5);
      const double analytic = f.analytic[static_cast<std::size_t>(flat)];
      const double tolerance = 1e-6 * std::max(std::fabs(numeric), std::fabs(analytic)) + 1e-9;
      EXPECT_NEAR(analytic, numeric, tolerance) << info.name << " element " << element;
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
}

// The whole gradient at once: the derivative along a random direction over every parameter
// equals <gradient, direction>.
void check_directional_derivative(GradientFixture& f, std::uint64_t seed) {
  const Tensor values = f.model.parameters().values();
  const std::vector<double> base = testing::to_vector(values);
  std::vector<double> direction(base.size());
  Rng rng(seed);
  for (double& d : direction) d = 2.0 * rng.uniform() - 1.0;
  const double step = 1e-6;
  const auto loss_at = [&](double t) {
    std::vector<double> moved(base);
    for (std::size_t i = 0; i < moved.size(); ++i) moved[i] += t * direction[i];
    testing::from_vector(values, moved);
    return mean_loss(f.model, f.batch.view());
  };
  const double numeric = (loss_at(step) - loss_at(-step)) / (2.0 * step);
  testing::from_vector(values, base);
  double analytic = 0;
  for (std::size_t i = 0; i < base.size(); ++i) analytic += f.analytic[i] * direction[i];
  EXPECT_NEAR(analytic, numeric, 1e-6 * std::fabs(analytic) + 1e-9);
}

void check_padding_gradients_zero(const GradientFixture& f) {
  for (const ParameterInfo& info : f.model.parameters().infos()) {
    if (info.valid_rows == info.shape[0]) continue;
    const std::int64_t row = info.shape[1];
    for (std::int64_t i = info.valid_rows * row; i < info.numel(); ++i)
      ASSERT_EQ(f.analytic[static_cast<std::size_t>(info.offset + i)], 0.0) << info.name;
  }
}

TEST(ModelGradcheck, Gpt2MatchesFiniteDifferences) {
  GradientFixture f = make_fixture(testing::tiny_gpt2(), 11);
  check_every_tensor(f);
  check_directional_derivative(f, 12);
  check_padding_gradients_zero(f);
}

TEST(ModelGradcheck, LlamaMatchesFiniteDifferences) {
  GradientFixture f = make_fixture(testing::tiny_llama(), 21);
  check_every_tensor(f);
  check_directional_derivative(f, 22);
  check_padding_gradients_zero(f);
}

TEST(ModelGradcheck, TiedLlamaMatchesFiniteDifferences) {
  ModelConfig config = testing::tiny_llama();
  config.tie_embeddings = true;
  GradientFixture f = make_fixture(config, 31);
  EXPECT_FALSE(f.model.parameters().contains("lm_head.weight"));
  check_directional_derivative(f, 32);
}

// Gradients accumulate: two micro-batches of one row each, scaled by the total count, give
// the gradient of the two-row batch.
TEST(ModelGradcheck, MicroBatchesAccumulate) {
  for (const ModelConfig& config : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    GradientFixture f = make_fixture(config, 41);
    const OwnedBatch& full = f.batch;
    std::vector<OwnedBatch> halves(2);
    for (std::int64_t row = 0; row < 2; ++row) {
      const auto slice = [&](const OwnedTensor& t) {
        OwnedTensor part(t.dtype(), Shape{1, 8});
        ops::copy(part, t.tensor().narrow(0, row, 1));
        return part;
      };
      halves[row].tokens = slice(full.tokens);
      halves[row].targets = slice(full.targets);
      halves[row].loss_mask = slice(full.loss_mask);
      halves[row].doc_ids = slice(full.doc_ids);
    }
    f.model.zero_grads();
    const std::int64_t count =
        f.model.forward(halves[0].view()).count + f.model.forward(halves[1].view()).count;
    for (const OwnedBatch& half : halves) {
      f.model.forward(half.view());
      f.model.backward(1.0 / static_cast<double>(count));
    }
    const std::vector<double> accumulated = testing::to_vector(f.model.parameters().grads());
    for (std::size_t i = 0; i < accumulated.size(); ++i)
      ASSERT_NEAR(accumulated[i], f.analytic[i], 1e-12 + 1e-9 * std::fabs(f.analytic[i])) << i;
  }
}

}  // namespace
}  // namespace kiln::model
