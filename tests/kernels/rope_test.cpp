// RoPE: Hugging Face rotate_half convention, llama3 frequency scaling, per-token positions,
// backward = inverse rotation (finite differences and round trip).
#include <gtest/gtest.h>

#include <numbers>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::gradient_check;
using testing::random_tensor;
using testing::relative_error;
using testing::to_vector;

// transformers' _compute_llama3_parameters, transcribed step by step with where-masks.
std::vector<double> llama3_inv_freq_reference(int dim, double base, double factor, double low,
                                              double high, double old_context) {
  std::vector<double> inv_freq, result;
  for (int i = 0; i < dim; i += 2) inv_freq.push_back(1.0 / std::pow(base, double(i) / dim));
  const double low_freq_wavelen = old_context / low, high_freq_wavelen = old_context / high;
  for (double f : inv_freq) {
    const double wavelen = 2 * std::numbers::pi / f;
    const double llama = wavelen > low_freq_wavelen ? f / factor : f;
    const double smooth_factor = (old_context / wavelen - low) / (high - low);
    const double smoothed = (1 - smooth_factor) * llama / factor + smooth_factor * llama;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    result.push_back(medium ? smoothed : llama);
  }
  return result;
}

TEST(KernelRope, Llama3InverseFrequenciesMatchTransformers) {
  ops::RopeConfig config;
  config.theta = 500000.0;
  config.llama3_scaling = true;  // Llama 3.1 defaults: factor 8, low 1, high 4, 8192
  const auto actual = ops::rope_inv_freq(128, config);
  const auto expected = llama3_inv_freq_reference(128, 500000.0, 8, 1, 4, 8192);
  ASSERT_EQ(actual.size(), 64u);
  EXPECT_LT(relative_error(actual, expected), 1e-15);
  // High frequencies are untouched, the lowest are divided by the factor, and the band in
  // between is really interpolated (the test covers all three branches).
  EXPECT_DOUBLE_EQ(actual[0], 1.0);
  EXPECT_DOUBLE_EQ(actual[63], std::pow(500000.0, -126.0 / 128) / 8);
  int medium = 0;
  for (int i = 0; i < 64; ++i) {
    const double plain = std::pow(500000.0, -2.0 * i / 128);
    if (actual[i] < plain && actual[i] > plain / 8 * (1 + 1e-12)) ++medium;
  }
  EXPECT_GT(medium, 0);
  config.llama3_scaling = false;
  const auto plain = ops::rope_inv_freq(128, config);
  EXPECT_DOUBLE_EQ(plain[10], std::pow(500000.0, -20.0 / 128));
}

// y = x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1), as in transformers.
std::vector<double> naive_rope(const std::vector<double>& x, const std::vector<std::int32_t>& pos,
                               int B, int T, int H, int D, const std::vector<double>& inv_freq) {
  std::vector<double> y(x.size());
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < H; ++h) {
        const double* xv = &x[((b * T + t) * H + h) * D];
        double* yv = &y[((b * T + t) * H + h) * D];
        for (int d = 0; d < D; ++d) {
          const double angle = pos[b * T + t] * inv_freq[d % (D / 2)];
          const double rotated = d < D / 2 ? -xv[d + D / 2] : xv[d - D / 2];
          yv[d] = xv[d] * std::cos(angle) + rotated * std::sin(angle);
        }
      }
  return y;
}

TEST(KernelRope, ForwardMatchesRotateHalfWithRestartingPositions) {
  const int B = 2, T = 6, H = 3, D = 8;
  // Two packed documents in batch row 0: positions restart at the boundary.
  std::vector<std::int32_t> positions = {0, 1, 2, 0, 1, 2, 5, 6, 7, 8, 9, 10};
  ops::RopeConfig config;
  config.theta = 10000.0;
  const auto inv_freq = ops::rope_inv_freq(D, config);
  for (DType dtype : {DType::F32, DType::F64}) {
    auto x = random_tensor(dtype, {B, T, H, D}, 1);
    OwnedTensor y(dtype, {B, T, H, D});
    ops::rope_forward(y, x, Tensor::of(positions.data(), {B, T}), config);
    EXPECT_LT(
        relative_error(to_vector(y), naive_rope(to_vector(x), positions, B, T, H, D, inv_freq)),
        dtype == DType::F32 ? 1e-6 : 1e-14);
  }
}

TEST(KernelRope, BackwardIsInverseRotationAndMatchesFiniteDifferences) {
  const int B = 1, T = 5, H = 2, D = 16;
  std::vector<std::uint32_t> positions = {3, 4, 0, 1, 2};
  ops::RopeConfig config;
  config.theta = 500000.0;
  config.llama3_scaling = true;
  config.original_max_position_embeddings = 16;  // small, so the scaling matters at D = 16
  auto x = random_tensor(DType::F64, {B, T, H, D}, 11);
  const Tensor pos = Tensor::of(positions.data(), {B, T});
  const auto weights = testing::loss_weights(B * T * H * D, 12);
  OwnedTensor y(DType::F64, {B, T, H, D});
  const auto loss = [&] {
    ops::rope_forward(y, x, pos, config);
    return testing::weighted_sum(y, weights);
  };
  OwnedTensor dy(DType::F64, {B, T, H, D}), dx(DType::F64, {B, T, H, D});
  std::copy(weights.begin(), weights.end(), dy.data<double>());
  ops::rope_backward(dx, dy, pos, config);
  EXPECT_LT(gradient_check(x, to_vector(dx), loss), 1e-8);
  // Rotating back (in place) recovers x.
  ops::rope_forward(y, x, pos, config);
  ops::rope_backward(y, y, pos, config);
  EXPECT_LT(relative_error(to_vector(y), to_vector(x)), 1e-14);
}

TEST(KernelRope, RotatesStridedQueryInsideFusedQkv) {
  const int B = 1, T = 3, Hq = 2, Hkv = 1, D = 4;
  auto qkv = random_tensor(DType::F64, {B, T, (Hq + 2 * Hkv) * D}, 21);
  const Tensor fused4 = qkv.tensor().reshape({B, T, Hq + 2 * Hkv, D});
  const Tensor q = fused4.narrow(2, 0, Hq);
  std::vector<std::int64_t> positions = {0, 1, 2};
  const auto before = to_vector(qkv);
  const auto q_before = to_vector(q);
  ops::RopeConfig config;
  ops::rope_forward(q, q, Tensor::of(positions.data(), {B, T}), config);
  const auto after = to_vector(qkv);
  EXPECT_LT(relative_error(to_vector(q), naive_rope(q_before, {0, 1, 2}, B, T, Hq, D,
                                                    ops::rope_inv_freq(D, config))),
            1e-14);
  // k and v (heads 2, 3 of each token) are untouched.
  for (int t = 0; t < T; ++t)
    for (int i = Hq * D; i < (Hq + 2 * Hkv) * D; ++i)
      EXPECT_EQ(after[t * (Hq + 2 * Hkv) * D + i], before[t * (Hq + 2 * Hkv) * D + i]);
}

TEST(KernelRope, RejectsOddHeadDimAndWrongPositions) {
  OwnedTensor x(DType::F32, {1, 2, 1, 5}), y(DType::F32, {1, 2, 1, 5});
  std::vector<std::int32_t> positions = {0, 1};
  EXPECT_THROW(ops::rope_forward(y, x, Tensor::of(positions.data(), {1, 2}), {}), Error);
  OwnedTensor x4(DType::F32, {1, 3, 1, 4});
  EXPECT_THROW(ops::rope_forward(x4, x4, Tensor::of(positions.data(), {1, 2}), {}), Error);
}

}  // namespace
}  // namespace kiln
