// Linear layer and general matmul: forward against a naive triple loop, backward against
// central finite differences in double, gradient accumulation semantics.
#include <gtest/gtest.h>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::gradient_check;
using testing::random_tensor;
using testing::relative_error;
using testing::to_vector;

// y[n, o] = sum_i x[n, i] w[o, i] + b[o]
std::vector<double> naive_linear(const std::vector<double>& x, const std::vector<double>& w,
                                 const std::vector<double>& b, int rows, int in, int out) {
  std::vector<double> y(static_cast<std::size_t>(rows * out));
  for (int n = 0; n < rows; ++n)
    for (int o = 0; o < out; ++o) {
      double sum = b.empty() ? 0.0 : b[o];
      for (int i = 0; i < in; ++i) sum += x[n * in + i] * w[o * in + i];
      y[n * out + o] = sum;
    }
  return y;
}

TEST(KernelMatmul, LinearForwardMatchesNaive) {
  const int B = 2, T = 5, in = 13, out = 7;
  for (DType dtype : {DType::F32, DType::F64}) {
    auto x = random_tensor(dtype, {B, T, in}, 1);
    auto w = random_tensor(dtype, {out, in}, 2);
    auto b = random_tensor(dtype, {out}, 3);
    OwnedTensor y(dtype, {B, T, out});
    ops::linear_forward(y, x, w, b);
    const auto expected = naive_linear(to_vector(x), to_vector(w), to_vector(b), B * T, in, out);
    EXPECT_LT(relative_error(to_vector(y), expected), dtype == DType::F32 ? 1e-6 : 1e-14);
    OwnedTensor y_no_bias(dtype, {B, T, out});
    ops::linear_forward(y_no_bias, x, w);
    EXPECT_LT(relative_error(to_vector(y_no_bias),
                             naive_linear(to_vector(x), to_vector(w), {}, B * T, in, out)),
              dtype == DType::F32 ? 1e-6 : 1e-14);
  }
}

TEST(KernelMatmul, LinearBackwardMatchesFiniteDifferences) {
  const int N = 6, in = 9, out = 5;
  auto x = random_tensor(DType::F64, {N, in}, 11);
  auto w = random_tensor(DType::F64, {out, in}, 12);
  auto b = random_tensor(DType::F64, {out}, 13);
  const auto weights = testing::loss_weights(N * out, 14);
  OwnedTensor y(DType::F64, {N, out});
  const auto loss = [&] {
    ops::linear_forward(y, x, w, b);
    return testing::weighted_sum(y, weights);
  };
  OwnedTensor dy(DType::F64, {N, out});
  std::copy(weights.begin(), weights.end(), dy.data<double>());
  OwnedTensor dx(DType::F64, {N, in}), dw(DType::F64, {out, in}), db(DType::F64, {out});
  ops::linear_backward(dx, dw, db, dy, x, w);
  EXPECT_LT(gradient_check(x, to_vector(dx), loss), 1e-8);
  EXPECT_LT(gradient_check(w, to_vector(dw), loss), 1e-8);
  EXPECT_LT(gradient_check(b, to_vector(db), loss), 1e-8);
}

TEST(KernelMatmul, ParameterGradientsAccumulateAndInputGradientFollowsFlag) {
  const int N = 4, in = 6, out = 3;
  auto x = random_tensor(DType::F64, {N, in}, 21);
  auto w = random_tensor(DType::F64, {out, in}, 22);
  auto dy = random_tensor(DType::F64, {N, out}, 23);
  OwnedTensor dx(DType::F64, {N, in}), dw(DType::F64, {out, in}), db(DType::F64, {out});
  ops::linear_backward(dx, dw, db, dy, x, w);
  const auto dx_once = to_vector(dx), dw_once = to_vector(dw), db_once = to_vector(db);
  ops::linear_backward(dx, dw, db, dy, x, w);  // dx overwritten, dw and db doubled
  EXPECT_EQ(to_vector(dx), dx_once);
  for (std::size_t i = 0; i < dw_once.size(); ++i)
    EXPECT_NEAR(to_vector(dw)[i], 2 * dw_once[i], 1e-12);
  for (std::size_t i = 0; i < db_once.size(); ++i)
    EXPECT_NEAR(to_vector(db)[i], 2 * db_once[i], 1e-12);
  ops::linear_backward(dx, Tensor{}, Tensor{}, dy, x, w, ops::Accumulate::Yes);
  for (std::size_t i = 0; i < dx_once.size(); ++i)
    EXPECT_NEAR(to_vector(dx)[i], 2 * dx_once[i], 1e-12);
}

TEST(KernelMatmul, LinearReadsColumnSliceOfFusedBuffer) {
  // x is the second half of a [N, 2 * in] buffer: row stride 2 * in.
  const int N = 5, in = 4, out = 3;
  auto fused = random_tensor(DType::F64, {N, 2 * in}, 31);
  auto w = random_tensor(DType::F64, {out, in}, 32);
  const Tensor x = fused.tensor().narrow(1, in, in);
  OwnedTensor y(DType::F64, {N, out});
  ops::linear_forward(y, x, w);
  EXPECT_LT(relative_error(to_vector(y), naive_linear(to_vector(x), to_vector(w), {}, N, in, out)),
            1e-14);
}

TEST(KernelMatmul, GeneralMatmulWithTransposes) {
  const int M = 4, K = 6, N = 5;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      auto a = random_tensor(DType::F64, ta ? Shape{K, M} : Shape{M, K}, 41);
      auto b = random_tensor(DType::F64, tb ? Shape{N, K} : Shape{K, N}, 42);
      auto c = random_tensor(DType::F64, {M, N}, 43);
      const auto c_before = to_vector(c), av = to_vector(a), bv = to_vector(b);
      ops::matmul(c, a, b, ta, tb, 2.0, 0.5);
      std::vector<double> expected(static_cast<std::size_t>(M * N));
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double sum = 0;
          for (int k = 0; k < K; ++k)
            sum += (ta ? av[k * M + i] : av[i * K + k]) * (tb ? bv[j * K + k] : bv[k * N + j]);
          expected[i * N + j] = 2.0 * sum + 0.5 * c_before[i * N + j];
        }
      EXPECT_LT(relative_error(to_vector(c), expected), 1e-14) << ta << tb;
    }
}

TEST(KernelMatmul, RejectsMismatchedShapesWithOpName) {
  OwnedTensor x(DType::F32, {4, 8}), w(DType::F32, {3, 7}), y(DType::F32, {4, 3});
  try {
    ops::linear_forward(y, x, w);
    FAIL() << "expected kiln::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("linear_forward"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("[4, 8]"), std::string::npos);
  }
  OwnedTensor w64(DType::F64, {3, 8});
  EXPECT_THROW(ops::linear_forward(y, x, w64), Error);
}

}  // namespace
}  // namespace kiln
