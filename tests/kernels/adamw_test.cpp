// AdamW against hand-computed steps; the global-norm helper; the finiteness guard.
#include <gtest/gtest.h>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

TEST(KernelAdamW, FirstStepMatchesHandComputation) {
  // p = 1, g = 0.5, lr = 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, t = 1:
  //   p  = 1 - 0.1 * 0.01 * 1            = 0.999
  //   m  = 0.1 * 0.5 = 0.05,  v = 0.001 * 0.25 = 0.00025
  //   m^ = 0.05 / 0.1 = 0.5,  sqrt(v^) = sqrt(0.00025 / 0.001) = 0.5
  //   p  = 0.999 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.899000002 (to 9 digits)
  double p[2] = {1.0, 1.0}, g[2] = {0.5, 0.5}, m[2] = {0, 0}, v[2] = {0, 0};
  ops::AdamWStep step{.lr = 0.1,
                      .beta1 = 0.9,
                      .beta2 = 0.999,
                      .eps = 1e-8,
                      .weight_decay = 0.01,
                      .step = 1,
                      .grad_scale = 1.0};
  ops::adamw_step(Tensor::of(p, {2}), Tensor::of(g, {2}), Tensor::of(m, {2}), Tensor::of(v, {2}),
                  step, true);
  EXPECT_NEAR(p[0], 0.999 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
  EXPECT_NEAR(p[0], 0.899000002, 1e-9);
  EXPECT_DOUBLE_EQ(m[0], 0.05);
  EXPECT_DOUBLE_EQ(v[0], 0.00025);
  EXPECT_EQ(g[0], 0.5);  // the gradient is left alone
}

TEST(KernelAdamW, SecondStepWithoutDecayAndWithGradScale) {
  // State after one step as above, then t = 2 with g = -0.2 scaled by 0.5 (g' = -0.1), no decay:
  //   m = 0.9 * 0.05 + 0.1 * -0.1 = 0.035,   v = 0.999 * 0.00025 + 0.001 * 0.01 = 0.00025975
  //   step = lr / (1 - 0.81) = 0.1 / 0.19,   denom = sqrt(v) / sqrt(1 - 0.998001) + eps
  double p = 0.8, g = -0.2, m = 0.05, v = 0.00025;
  ops::AdamWStep step{.lr = 0.1,
                      .beta1 = 0.9,
                      .beta2 = 0.999,
                      .eps = 1e-8,
                      .weight_decay = 0.5,
                      .step = 2,
                      .grad_scale = 0.5};
  ops::adamw_step(Tensor::of(&p, {1}), Tensor::of(&g, {1}), Tensor::of(&m, {1}),
                  Tensor::of(&v, {1}), step, /*apply_weight_decay=*/false);
  const double denom = std::sqrt(0.00025975) / std::sqrt(1 - 0.998001) + 1e-8;
  EXPECT_NEAR(m, 0.035, 1e-15);
  EXPECT_NEAR(v, 0.00025975, 1e-17);
  EXPECT_NEAR(p, 0.8 - 0.1 / 0.19 * 0.035 / denom, 1e-13);
}

TEST(KernelAdamW, FloatMatchesDoubleOverManySteps) {
  const int n = 1000;
  auto p64 = testing::random_tensor(DType::F64, {n}, 1);
  OwnedTensor m64(DType::F64, {n}), v64(DType::F64, {n});
  OwnedTensor p32 = testing::converted(p64, DType::F32), m32(DType::F32, {n}), v32(DType::F32, {n});
  for (int t = 1; t <= 10; ++t) {
    auto g64 = testing::random_tensor(DType::F64, {n}, 100 + t);
    ops::AdamWStep step{.lr = 1e-3, .weight_decay = 0.1, .step = t};
    ops::adamw_step(p64, g64, m64, v64, step, true);
    ops::adamw_step(p32, testing::converted(g64, DType::F32), m32, v32, step, true);
  }
  EXPECT_LT(testing::relative_error(testing::to_vector(p32), testing::to_vector(p64)), 1e-6);
}

TEST(KernelAdamW, RejectsMismatchedStateAndStepZero) {
  OwnedTensor p(DType::F32, {4}), g(DType::F32, {4}), m(DType::F32, {4}), v(DType::F32, {3});
  EXPECT_THROW(ops::adamw_step(p, g, m, v, {}, true), Error);
  OwnedTensor v4(DType::F32, {4});
  ops::AdamWStep step;
  step.step = 0;
  EXPECT_THROW(ops::adamw_step(p, g, m, v4, step, true), Error);
}

TEST(KernelGlobalNorm, SumOfSquaresAndFiniteness) {
  const int n = 100000;  // several blocks
  auto x = testing::random_tensor(DType::F32, {n}, 7);
  double expected = 0;
  for (int i = 0; i < n; ++i) expected += double(x.data<float>()[i]) * x.data<float>()[i];
  OwnedTensor total(DType::F64, {1}), flag(DType::F64, {1});
  ops::sum_of_squares(total, x);
  EXPECT_NEAR(total.data<double>()[0], expected, 1e-9 * expected);
  ops::nonfinite_flag(flag, x);
  EXPECT_EQ(flag.data<double>()[0], 0.0);
  x.data<float>()[n / 2] = std::numeric_limits<float>::infinity();
  ops::nonfinite_flag(flag, x);
  EXPECT_EQ(flag.data<double>()[0], 1.0);
  x.data<float>()[n / 2] = std::numeric_limits<float>::quiet_NaN();
  ops::nonfinite_flag(flag, x);
  EXPECT_EQ(flag.data<double>()[0], 1.0);
}

TEST(KernelGlobalNorm, RangesSumInOneCallAsSeparateCallsWould) {
  auto x = testing::random_tensor(DType::F32, {50000}, 9);
  const std::vector<ops::FlatRange> ranges = {{0, 1000}, {20000, 17}, {30000, 20000}};
  OwnedTensor together(DType::F64, {1}), piece(DType::F64, {1});
  ops::sum_of_squares(together, x, ranges);
  double separately = 0;
  for (const auto& range : ranges) {
    ops::sum_of_squares(piece, x.tensor().narrow(0, range.offset, range.length));
    separately += piece.data<double>()[0];
  }
  EXPECT_EQ(together.data<double>()[0], separately);  // bitwise: same order of additions
  const std::vector<ops::FlatRange> outside = {{49990, 11}};
  EXPECT_THROW(ops::sum_of_squares(together, x, outside), Error);
}

TEST(KernelAdamW, SegmentsInOneCallEqualOneCallPerParameter) {
  const std::int64_t P = 3000, S = 2500;  // params buffer, owned state range (ZeRO-like offset)
  const auto params0 = testing::random_tensor(DType::F32, {P}, 11);
  const auto grads = testing::random_tensor(DType::F32, {S}, 12);
  const std::vector<ops::AdamWSegment> segments = {{500, 0, 1200, true}, {1700, 1200, 300, false}, {2000, 1500, 1000, true}};
  ops::AdamWStep step;
  step.lr = 1e-2;
  step.weight_decay = 0.1;
  step.step = 3;
  step.grad_scale = 0.5;
  OwnedTensor fused_p = testing::converted(params0, DType::F32);
  OwnedTensor fused_m(DType::F32, {S}), fused_v(DType::F32, {S});
  OwnedTensor single_p = testing::converted(params0, DType::F32);
  OwnedTensor single_m(DType::F32, {S}), single_v(DType::F32, {S});
  for (int repeat = 0; repeat < 2; ++repeat) {
    ops::adamw_step_segments(fused_p, grads, fused_m, fused_v, segments, step);
    for (const auto& segment : segments) {
      ops::adamw_step(single_p.tensor().narrow(0, segment.param_offset, segment.length),
                      grads.tensor().narrow(0, segment.state_offset, segment.length),
                      single_m.tensor().narrow(0, segment.state_offset, segment.length),
                      single_v.tensor().narrow(0, segment.state_offset, segment.length), step, segment.weight_decay);
    }
  }
  EXPECT_EQ(testing::to_vector(fused_p), testing::to_vector(single_p));  // bitwise
  EXPECT_EQ(testing::to_vector(fused_m), testing::to_vector(single_m));
  EXPECT_EQ(testing::to_vector(params0).front(), testing::to_vector(fused_p).front()) << "elements outside every segment stay";
  const std::vector<ops::AdamWSegment> outside = {{2900, 0, 200, true}};
  EXPECT_THROW(ops::adamw_step_segments(fused_p, grads, fused_m, fused_v, outside, step), Error);
}

}  // namespace
}  // namespace kiln
