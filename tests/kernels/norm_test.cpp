// LayerNorm and RMSNorm: forward against a naive per-row computation, backward (input,
// weight, bias) against central finite differences in double.
#include <gtest/gtest.h>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::gradient_check;
using testing::random_tensor;
using testing::relative_error;
using testing::to_vector;

constexpr double kEps = 1e-5;

std::vector<double> naive_layernorm(const std::vector<double>& x, const std::vector<double>& w,
                                    const std::vector<double>& b, int rows, int C) {
  std::vector<double> y(x.size());
  for (int r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int c = 0; c < C; ++c) mean += x[r * C + c] / C;
    for (int c = 0; c < C; ++c) var += (x[r * C + c] - mean) * (x[r * C + c] - mean) / C;
    for (int c = 0; c < C; ++c)
      y[r * C + c] = (x[r * C + c] - mean) / std::sqrt(var + kEps) * w[c] + b[c];
  }
  return y;
}

std::vector<double> naive_rmsnorm(const std::vector<double>& x, const std::vector<double>& w,
                                  int rows, int C) {
  std::vector<double> y(x.size());
  for (int r = 0; r < rows; ++r) {
    double mean_square = 0;
    for (int c = 0; c < C; ++c) mean_square += x[r * C + c] * x[r * C + c] / C;
    for (int c = 0; c < C; ++c) y[r * C + c] = x[r * C + c] / std::sqrt(mean_square + kEps) * w[c];
  }
  return y;
}

TEST(KernelLayerNorm, ForwardMatchesNaiveInFloatAndDouble) {
  const int B = 3, T = 4, C = 70;  // C > 64: two column blocks in the backward
  for (DType dtype : {DType::F32, DType::F64}) {
    auto x = random_tensor(dtype, {B, T, C}, 1, -2, 3);
    auto w = random_tensor(dtype, {C}, 2, 0.5, 1.5);
    auto b = random_tensor(dtype, {C}, 3);
    OwnedTensor y(dtype, {B, T, C}), mean(dtype, {B * T}), rstd(dtype, {B * T});
    ops::layernorm_forward(y, mean, rstd, x, w, b, kEps);
    EXPECT_LT(relative_error(to_vector(y),
                             naive_layernorm(to_vector(x), to_vector(w), to_vector(b), B * T, C)),
              dtype == DType::F32 ? 2e-6 : 1e-13);
  }
}

TEST(KernelLayerNorm, BackwardMatchesFiniteDifferences) {
  const int N = 5, C = 70;
  auto x = random_tensor(DType::F64, {N, C}, 11, -2, 3);
  auto w = random_tensor(DType::F64, {C}, 12, 0.5, 1.5);
  auto b = random_tensor(DType::F64, {C}, 13);
  const auto weights = testing::loss_weights(N * C, 14);
  OwnedTensor y(DType::F64, {N, C}), mean(DType::F64, {N}), rstd(DType::F64, {N});
  const auto loss = [&] {
    ops::layernorm_forward(y, mean, rstd, x, w, b, kEps);
    return testing::weighted_sum(y, weights);
  };
  loss();
  OwnedTensor dy(DType::F64, {N, C});
  std::copy(weights.begin(), weights.end(), dy.data<double>());
  OwnedTensor dx(DType::F64, {N, C}), dw(DType::F64, {C}), db(DType::F64, {C});
  ops::layernorm_backward(dx, dw, db, dy, x, w, mean, rstd);
  EXPECT_LT(gradient_check(x, to_vector(dx), loss), 1e-7);
  EXPECT_LT(gradient_check(w, to_vector(dw), loss), 1e-7);
  EXPECT_LT(gradient_check(b, to_vector(db), loss), 1e-7);
}

TEST(KernelLayerNorm, InputGradientAccumulatesOnRequest) {
  const int N = 3, C = 8;
  auto x = random_tensor(DType::F64, {N, C}, 21);
  auto w = random_tensor(DType::F64, {C}, 22);
  auto b = random_tensor(DType::F64, {C}, 23);
  auto dy = random_tensor(DType::F64, {N, C}, 24);
  OwnedTensor y(DType::F64, {N, C}), mean(DType::F64, {N}), rstd(DType::F64, {N});
  ops::layernorm_forward(y, mean, rstd, x, w, b);
  OwnedTensor fresh(DType::F64, {N, C});
  ops::layernorm_backward(fresh, Tensor{}, Tensor{}, dy, x, w, mean, rstd);
  auto residual = random_tensor(DType::F64, {N, C}, 25);
  const auto before = to_vector(residual);
  ops::layernorm_backward(residual, Tensor{}, Tensor{}, dy, x, w, mean, rstd, ops::Accumulate::Yes);
  const auto after = to_vector(residual), grad = to_vector(fresh);
  for (std::size_t i = 0; i < after.size(); ++i) EXPECT_NEAR(after[i], before[i] + grad[i], 1e-12);
}

TEST(KernelRmsNorm, ForwardMatchesNaiveInFloatAndDouble) {
  const int N = 9, C = 100;
  for (DType dtype : {DType::F32, DType::F64}) {
    auto x = random_tensor(dtype, {N, C}, 31, -2, 3);
    auto w = random_tensor(dtype, {C}, 32, 0.5, 1.5);
    OwnedTensor y(dtype, {N, C}), rstd(dtype, {N});
    ops::rmsnorm_forward(y, rstd, x, w, kEps);
    EXPECT_LT(relative_error(to_vector(y), naive_rmsnorm(to_vector(x), to_vector(w), N, C)),
              dtype == DType::F32 ? 2e-6 : 1e-13);
  }
}

TEST(KernelRmsNorm, BackwardMatchesFiniteDifferences) {
  const int N = 4, C = 70;
  auto x = random_tensor(DType::F64, {2, 2, C}, 41, -2, 3);
  auto w = random_tensor(DType::F64, {C}, 42, 0.5, 1.5);
  const auto weights = testing::loss_weights(N * C, 43);
  OwnedTensor y(DType::F64, {2, 2, C}), rstd(DType::F64, {N});
  const auto loss = [&] {
    ops::rmsnorm_forward(y, rstd, x, w, kEps);
    return testing::weighted_sum(y, weights);
  };
  loss();
  OwnedTensor dy(DType::F64, {2, 2, C});
  std::copy(weights.begin(), weights.end(), dy.data<double>());
  OwnedTensor dx(DType::F64, {2, 2, C}), dw(DType::F64, {C});
  ops::rmsnorm_backward(dx, dw, dy, x, w, rstd);
  EXPECT_LT(gradient_check(x, to_vector(dx), loss), 1e-7);
  EXPECT_LT(gradient_check(w, to_vector(dw), loss), 1e-7);
  // dw accumulates: a second backward doubles it.
  const auto dw_once = to_vector(dw);
  ops::rmsnorm_backward(Tensor{}, dw, dy, x, w, rstd);
  for (std::size_t i = 0; i < dw_once.size(); ++i)
    EXPECT_NEAR(to_vector(dw)[i], 2 * dw_once[i], 1e-12);
}

TEST(KernelRmsNorm, RejectsWrongWeightLength) {
  OwnedTensor x(DType::F32, {2, 8}), w(DType::F32, {7}), y(DType::F32, {2, 8}),
      rstd(DType::F32, {2});
  EXPECT_THROW(ops::rmsnorm_forward(y, rstd, x, w), Error);
}

}  // namespace
}  // namespace kiln
