// GELU (tanh) and SwiGLU: forward against the formulas, backward against finite differences.
#include <gtest/gtest.h>

#include <numbers>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::gradient_check;
using testing::random_tensor;
using testing::relative_error;
using testing::to_vector;

double reference_gelu(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

TEST(KernelGelu, ForwardMatchesTorchTanhApproximation) {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in Python float64 — the formula that
  // torch documents for gelu(approximate='tanh').
  double in[] = {1.0, -0.5, 3.0};
  double out[3];
  ops::gelu_forward(Tensor::of(out, {3}), Tensor::of(in, {3}));
  EXPECT_NEAR(out[0], 0.8411919906082768, 1e-15);
  EXPECT_NEAR(out[1], -0.15428599017485606, 1e-15);
  EXPECT_NEAR(out[2], 2.996362607918227, 1e-15);
  for (DType dtype : {DType::F32, DType::F64}) {
    auto x = random_tensor(dtype, {3, 5, 17}, 1, -4, 4);
    OwnedTensor y(dtype, {3, 5, 17});
    ops::gelu_forward(y, x);
    std::vector<double> expected = to_vector(x);
    for (double& value : expected) value = reference_gelu(value);
    EXPECT_LT(relative_error(to_vector(y), expected), dtype == DType::F32 ? 1e-6 : 1e-15);
  }
}

TEST(KernelGelu, BackwardMatchesFiniteDifferencesAndRunsInPlace) {
  auto x = random_tensor(DType::F64, {6, 11}, 11, -4, 4);
  const auto weights = testing::loss_weights(66, 12);
  OwnedTensor y(DType::F64, {6, 11});
  const auto loss = [&] {
    ops::gelu_forward(y, x);
    return testing::weighted_sum(y, weights);
  };
  OwnedTensor dy(DType::F64, {6, 11});
  std::copy(weights.begin(), weights.end(), dy.data<double>());
  OwnedTensor dx(DType::F64, {6, 11});
  ops::gelu_backward(dx, dy, x);
  EXPECT_LT(gradient_check(x, to_vector(dx), loss), 1e-8);
  ops::gelu_backward(dy, dy, x);  // in place over dy
  EXPECT_EQ(to_vector(dy), to_vector(dx));
}

TEST(KernelSwiglu, ForwardAndBackwardOnFusedGateUpBuffer) {
  const int N = 5, F = 9;
  auto fused = random_tensor(DType::F64, {N, 2 * F}, 21, -3, 3);
  const Tensor gate = fused.tensor().narrow(1, 0, F), up = fused.tensor().narrow(1, F, F);
  OwnedTensor out(DType::F64, {N, F});
  ops::swiglu_forward(out, gate, up);
  const auto g = to_vector(gate), u = to_vector(up);
  std::vector<double> expected(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) expected[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
  EXPECT_LT(relative_error(to_vector(out), expected), 1e-15);

  const auto weights = testing::loss_weights(N * F, 22);
  const auto loss = [&] {
    ops::swiglu_forward(out, gate, up);
    return testing::weighted_sum(out, weights);
  };
  OwnedTensor dout(DType::F64, {N, F}), dfused(DType::F64, {N, 2 * F});
  std::copy(weights.begin(), weights.end(), dout.data<double>());
  ops::swiglu_backward(dfused.tensor().narrow(1, 0, F), dfused.tensor().narrow(1, F, F), dout, gate,
                       up);
  EXPECT_LT(gradient_check(fused, to_vector(dfused), loss), 1e-8);
}

TEST(KernelSwiglu, FloatCloseToDouble) {
  auto gate = random_tensor(DType::F64, {4, 33}, 31, -3, 3);
  auto up = random_tensor(DType::F64, {4, 33}, 32, -3, 3);
  OwnedTensor out64(DType::F64, {4, 33}), out32(DType::F32, {4, 33});
  ops::swiglu_forward(out64, gate, up);
  ops::swiglu_forward(out32, testing::converted(gate, DType::F32),
                      testing::converted(up, DType::F32));
  EXPECT_LT(relative_error(to_vector(out32), to_vector(out64)), 1e-6);
}

}  // namespace
}  // namespace kiln
