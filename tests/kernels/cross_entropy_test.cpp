// Fused softmax cross-entropy: padding columns and masked rows are ignored, the gradient
// matches finite differences, in-place backward, vocab-parallel pieces compose to the whole.
#include <gtest/gtest.h>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::gradient_check;
using testing::random_tensor;
using testing::relative_error;
using testing::to_vector;

struct Problem {
  int N = 7, V = 20, valid = 17;  // three padding columns
  OwnedTensor logits;
  std::vector<std::int32_t> targets;
  std::vector<std::uint8_t> mask;
  Problem(DType dtype, std::uint64_t seed) : logits(random_tensor(dtype, {7, 20}, seed, -4, 4)) {
    Rng rng(seed + 1);
    for (int i = 0; i < N; ++i) targets.push_back(static_cast<std::int32_t>(rng.below(valid)));
    mask = {1, 1, 0, 1, 1, 0, 1};
    targets[2] = 12345;  // masked rows may hold anything (e.g. an ignore index)
    // Huge padding logits: any leak into the softmax would dominate the loss.
    for (int i = 0; i < N; ++i)
      for (int j = valid; j < V; ++j) {
        if (dtype == DType::F32) {
          logits.data<float>()[i * V + j] = 80.0f;
        } else {
          logits.data<double>()[i * V + j] = 80.0;
        }
      }
  }
  Tensor target_tensor() { return Tensor::of(targets.data(), {N}); }
  Tensor mask_tensor() { return Tensor::of(mask.data(), {N}); }
};

// Mean over unmasked rows of -log softmax(logits[:valid])[target], straightforwardly.
// The fused forward with its loss_sum tensor read back (the read a training step does once).
ops::LossSum forward(Tensor losses, Tensor lse, Problem& p, Tensor logits) {
  OwnedTensor loss_sum(DType::F64, {2});
  ops::cross_entropy_forward(losses, lse, loss_sum, logits, p.target_tensor(), p.mask_tensor(), p.valid);
  return ops::read_loss_sum(loss_sum);
}

double naive_loss(const std::vector<double>& logits, const Problem& p) {
  double total = 0;
  int count = 0;
  for (int i = 0; i < p.N; ++i) {
    if (!p.mask[i]) continue;
    double sum = 0;
    for (int j = 0; j < p.valid; ++j) sum += std::exp(logits[i * p.V + j]);
    total += std::log(sum) - logits[i * p.V + p.targets[i]];
    ++count;
  }
  return total / count;
}

TEST(KernelCrossEntropy, ForwardIgnoresPaddingColumnsAndMaskedRows) {
  for (DType dtype : {DType::F32, DType::F64}) {
    Problem p(dtype, 1);
    OwnedTensor losses(dtype, {p.N}), lse(dtype, {p.N});
    const ops::LossSum result = forward(losses, lse, p, p.logits);
    EXPECT_EQ(result.count, 5);
    EXPECT_NEAR(result.mean(), naive_loss(to_vector(p.logits), p),
                dtype == DType::F32 ? 1e-5 : 1e-13);
    EXPECT_EQ(to_vector(losses)[2], 0.0);
    EXPECT_EQ(to_vector(losses)[5], 0.0);
  }
}

TEST(KernelCrossEntropy, BackwardMatchesFiniteDifferencesAndZeroesPadding) {
  Problem p(DType::F64, 11);
  OwnedTensor lse(DType::F64, {p.N});
  const auto loss = [&] {
    return forward(Tensor{}, lse, p, p.logits)
        .mean();
  };
  loss();
  OwnedTensor dlogits(DType::F64, {p.N, p.V});
  ops::cross_entropy_backward(dlogits, p.logits, p.target_tensor(), lse, p.mask_tensor(), p.valid,
                              1.0 / 5);
  EXPECT_LT(gradient_check(p.logits, to_vector(dlogits), loss), 1e-8);
  const auto grad = to_vector(dlogits);
  for (int i = 0; i < p.N; ++i) {
    double row_sum = 0;
    for (int j = 0; j < p.V; ++j) {
      if (j >= p.valid || !p.mask[i]) {
        EXPECT_EQ(grad[i * p.V + j], 0.0);
      }
      row_sum += grad[i * p.V + j];
    }
    EXPECT_NEAR(row_sum, 0.0, 1e-15);  // softmax minus one-hot sums to zero
  }
}

TEST(KernelCrossEntropy, InPlaceBackwardAndFloatCloseToDouble) {
  Problem p64(DType::F64, 21);
  OwnedTensor lse64(DType::F64, {p64.N});
  forward(Tensor{}, lse64, p64, p64.logits);
  OwnedTensor expected(DType::F64, {p64.N, p64.V});
  ops::cross_entropy_backward(expected, p64.logits, p64.target_tensor(), lse64, p64.mask_tensor(),
                              p64.valid, 0.2);
  OwnedTensor logits32 = testing::converted(p64.logits, DType::F32);
  OwnedTensor lse32(DType::F32, {p64.N});
  forward(Tensor{}, lse32, p64, logits32);
  EXPECT_LT(relative_error(to_vector(lse32), to_vector(lse64)), 1e-6);
  ops::cross_entropy_backward(logits32, logits32, p64.target_tensor(), lse32, p64.mask_tensor(),
                              p64.valid, 0.2);  // in place, as llm.c
  EXPECT_LT(relative_error(to_vector(logits32), to_vector(expected)), 1e-5);
}

TEST(KernelCrossEntropy, VocabParallelPiecesEqualTheFusedOp) {
  Problem p(DType::F64, 31);
  OwnedTensor losses(DType::F64, {p.N}), lse(DType::F64, {p.N});
  const auto fused = forward(losses, lse, p, p.logits);
  // Two ranks: columns [0, 10) and [10, 20), of which [10, 17) are real vocabulary.
  const Tensor shard[2] = {p.logits.tensor().narrow(1, 0, 10), p.logits.tensor().narrow(1, 10, 10)};
  const std::int64_t first[2] = {0, 10}, valid_local[2] = {10, 7};
  OwnedTensor max_part[2] = {{DType::F64, {p.N}}, {DType::F64, {p.N}}};
  for (int r = 0; r < 2; ++r) ops::cross_entropy_local_max(max_part[r], shard[r], valid_local[r]);
  OwnedTensor row_max(DType::F64, {p.N});  // all-reduce MAX
  for (int i = 0; i < p.N; ++i)
    row_max.data<double>()[i] =
        std::max(max_part[0].data<double>()[i], max_part[1].data<double>()[i]);
  OwnedTensor sum_exp(DType::F64, {p.N}), target_logit(DType::F64, {p.N});
  for (int r = 0; r < 2; ++r) {
    OwnedTensor s(DType::F64, {p.N}), t(DType::F64, {p.N});
    ops::cross_entropy_local_sums(s, t, shard[r], p.target_tensor(), row_max, valid_local[r],
                                  first[r]);
    ops::add_to(sum_exp, s);  // all-reduce SUM
    ops::add_to(target_logit, t);
  }
  OwnedTensor lse_tp(DType::F64, {p.N}), losses_tp(DType::F64, {p.N});
  OwnedTensor split_sum(DType::F64, {2});
  ops::cross_entropy_finish(losses_tp, lse_tp, split_sum, row_max, sum_exp, target_logit, p.mask_tensor());
  const auto split = ops::read_loss_sum(split_sum);
  EXPECT_EQ(split.count, fused.count);
  EXPECT_NEAR(split.sum, fused.sum, 1e-12);
  EXPECT_LT(relative_error(to_vector(losses_tp), to_vector(losses)), 1e-13);

  OwnedTensor dfull(DType::F64, {p.N, p.V}), dsplit(DType::F64, {p.N, p.V});
  ops::cross_entropy_backward(dfull, p.logits, p.target_tensor(), lse, p.mask_tensor(), p.valid,
                              0.2);
  for (int r = 0; r < 2; ++r)
    ops::cross_entropy_backward_vocab_parallel(dsplit.tensor().narrow(1, first[r], 10), shard[r],
                                               p.target_tensor(), lse_tp, p.mask_tensor(),
                                               valid_local[r], first[r], 0.2);
  EXPECT_LT(relative_error(to_vector(dsplit), to_vector(dfull)), 1e-13);
}

TEST(KernelCrossEntropy, RejectsTargetsOutsideValidVocabulary) {
  Problem p(DType::F32, 41);
  p.targets[0] = p.valid;  // a padding column is never a legal target
  OwnedTensor lse(DType::F32, {p.N});
  EXPECT_THROW(forward(Tensor{}, lse, p, p.logits), Error);
}

TEST(KernelCrossEntropy, LossSumIsATensorOfSumAndCount) {
  Problem p(DType::F64, 51);
  OwnedTensor lse(DType::F64, {p.N});
  OwnedTensor wrong(DType::F32, {2});  // the loss sum is always f64 (sum, count)
  EXPECT_THROW(ops::cross_entropy_forward(Tensor{}, lse, wrong, p.logits, p.target_tensor(), p.mask_tensor(),
                                          p.valid),
               Error);
  OwnedTensor loss_sum(DType::F64, {2});
  ops::cross_entropy_forward(Tensor{}, lse, loss_sum, p.logits, p.target_tensor(), p.mask_tensor(), p.valid);
  EXPECT_EQ(loss_sum.data<double>()[1], 5.0);  // five unmasked rows
  EXPECT_NEAR(loss_sum.data<double>()[0] / 5.0, naive_loss(to_vector(p.logits), p), 1e-13);
}

TEST(KernelSoftmax, TemperatureAndPadding) {
  std::vector<double> logits = {1.0, 2.0, 3.0, 50.0};
  std::vector<double> probs(4);
  ops::softmax_forward(Tensor::of(probs.data(), {1, 4}), Tensor::of(logits.data(), {1, 4}), 3, 0.5);
  const double z = std::exp(2.0) + std::exp(4.0) + std::exp(6.0);
  EXPECT_NEAR(probs[0], std::exp(2.0) / z, 1e-15);
  EXPECT_NEAR(probs[2], std::exp(6.0) / z, 1e-15);
  EXPECT_EQ(probs[3], 0.0);
}

}  // namespace
}  // namespace kiln
