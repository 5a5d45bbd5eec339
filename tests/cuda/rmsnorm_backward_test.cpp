// kernels/cuda/rmsnorm_backward.cu under the emulated device against kiln::ops::rmsnorm_backward
// in f64 on the same inputs (and the same saved rstd, from ops::rmsnorm_forward).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cuda/rmsnorm_backward.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_checks.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

constexpr float kEps = 1e-5f;
constexpr float kWeightGradStart = 0.25f;  // dw accumulates (+=) into this

struct Shape {
  std::int64_t rows, channels;
  std::size_t count() const { return static_cast<std::size_t>(rows * channels); }
};
// One row; channels below, at and off the pack widths (4 f32, 8 bf16) and above a warp's
// 32 lanes x 8. And more rows than one grid of warps covers (1056 blocks x 8 warps = 8448), run
// once (f32, accumulating): it costs seconds of fibers under the emulator.
const Shape kShapes[] = {{1, 1}, {1, 37}, {3, 64}, {5, 100}, {2, 260}, {4, 1030}};
constexpr Shape kBeyondOneGrid{8448 + 21, 8};


struct Inputs {
  std::vector<float> x, w, dy, previous_dx;  // f32 values (bf16-exact for the bf16 tests)
};
Inputs random_inputs(Shape shape, std::uint32_t seed) {
  return {random_values(shape.count(), seed), random_values(static_cast<std::size_t>(shape.channels), seed + 1, 0.5f, 1.5f),
          random_values(shape.count(), seed + 2), random_values(shape.count(), seed + 3)};
}
Inputs bf16_exact(Inputs in) {
  for (std::vector<float>* values : {&in.x, &in.w, &in.dy, &in.previous_dx}) *values = to_f32(to_bf16(*values));
  return in;
}

// The f64 reference, and each result's term scale: dx = rstd (g - xhat mean(g xhat)) cancels
// where its two terms meet, dw sums over rows; fp32 is accurate to ulps of those terms.
struct Reference {
  std::vector<double> rstd, dx, dw, dx_scale, dw_scale;
};

Reference reference_rmsnorm_backward(const Inputs& in, Shape shape, bool accumulate) {
  const std::int64_t n = shape.rows, c = shape.channels;
  const OwnedTensor x = f64_of(in.x, {n, c}), w = f64_of(in.w, {c}), dy = f64_of(in.dy, {n, c});
  OwnedTensor y(DType::F64, {n, c}), rstd(DType::F64, {n});
  ops::rmsnorm_forward(y, rstd, x, w, kEps);
  const std::vector<float> start(static_cast<std::size_t>(c), kWeightGradStart);
  OwnedTensor dx = f64_of(in.previous_dx, {n, c}), dw = f64_of(start, {c});
  ops::rmsnorm_backward(dx, dw, dy, x, w, rstd, accumulate ? ops::Accumulate::Yes : ops::Accumulate::No);
  Reference ref;
  ref.rstd = values_of(rstd), ref.dx = values_of(dx), ref.dw = values_of(dw);
  ref.dx_scale.resize(shape.count());
  ref.dw_scale.assign(static_cast<std::size_t>(c), kWeightGradStart);
  const auto channels = static_cast<double>(c);
  for (std::int64_t r = 0; r < n; ++r) {
    double abs_g_xhat = 0;
    for (std::int64_t k = 0; k < c; ++k) {
      const std::size_t i = static_cast<std::size_t>(r * c + k);
      const double xhat = std::abs(in.x[i]) * ref.rstd[r];
      abs_g_xhat += std::abs(in.dy[i] * in.w[k]) * xhat;
      ref.dw_scale[k] += std::abs(in.dy[i]) * xhat;
    }
    for (std::int64_t k = 0; k < c; ++k) {
      const std::size_t i = static_cast<std::size_t>(r * c + k);
      const double xhat = std::abs(in.x[i]) * ref.rstd[r];
      ref.dx_scale[i] = ref.rstd[r] * (std::abs(in.dy[i] * in.w[k]) + xhat * abs_g_xhat / channels) +
                        (accumulate ? std::abs(in.previous_dx[i]) : 0.0);
    }
  }
  return ref;
}


struct DeviceResults {
  std::vector<float> dx, dw;
};

template <class T>
std::vector<T> stored(const std::vector<float>& values) {
  if constexpr (std::is_same_v<T, float>) {
    return values;
  } else {
    return to_bf16(values);
  }
}
template <class T>
std::vector<float> as_f32(const std::vector<T>& values) {
  if constexpr (std::is_same_v<T, float>) {
    return values;
  } else {
    return to_f32(values);
  }
}

// The backward from the reference's rstd (rounded to f32), as the forward would have saved it.
template <class T>
DeviceResults run_backward(const Inputs& in, Shape shape, bool accumulate, const Reference& ref) {
  DeviceBuffer<T> x(stored<T>(in.x)), w(stored<T>(in.w)), dy(stored<T>(in.dy)), dx(stored<T>(in.previous_dx));
  DeviceBuffer<float> rstd(std::vector<float>(ref.rstd.begin(), ref.rstd.end()));
  DeviceBuffer<float> dw(std::vector<float>(static_cast<std::size_t>(shape.channels), kWeightGradStart));
  const std::size_t bytes = device::rmsnorm_backward_workspace_bytes(shape.rows, shape.channels);
  DeviceBuffer<unsigned char> workspace(bytes);
  workspace.fill_bytes(0xFF);  // NaN: every partial the finish pass reads must have been written
  device::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), shape.rows,
                           shape.channels, accumulate, workspace.data(), bytes, nullptr);
  return {as_f32(dx.download()), dw.download()};
}

void expect_matches(const DeviceResults& got, const Reference& want, Shape shape, double bf16_share) {
  EXPECT_TRUE(close_to_scale(got.dx, want.dx, want.dx_scale, kF32Relative, bf16_share))
      << "dx " << shape.rows << "x" << shape.channels;
  EXPECT_TRUE(close_to_scale(got.dw, want.dw, want.dw_scale, weight_grad_tolerance(shape.rows, kF32Relative)))
      << "dw " << shape.rows << "x" << shape.channels;
}

void expect_f32_matches(Shape shape, bool accumulate) {
  const Inputs in = random_inputs(shape, 71);
  const Reference want = reference_rmsnorm_backward(in, shape, accumulate);
  expect_matches(run_backward<float>(in, shape, accumulate, want), want, shape, 0.0);
}

TEST(CudaRmsnormBackward, F32MatchesTheCpuOpForAwkwardShapes) {
  for (const Shape& shape : kShapes) {
    expect_f32_matches(shape, false);
    expect_f32_matches(shape, true);
  }
}

TEST(CudaRmsnormBackward, F32MoreRowsThanOneGrid) { expect_f32_matches(kBeyondOneGrid, true); }

// bf16 storage: inputs exact in fp32, dx the fp32 result rounded once (2^-8 of its magnitude
// more); dw stays f32.
TEST(CudaRmsnormBackward, Bf16WithinOneRoundingOfTheFp32Result) {
  for (const Shape& shape : kShapes) {
    const Inputs in = bf16_exact(random_inputs(shape, 72));
    const Reference want = reference_rmsnorm_backward(in, shape, true);
    expect_matches(run_backward<__nv_bfloat16>(in, shape, true, want), want, shape, kBF16Rounding);
  }
}

TEST(CudaRmsnormBackward, UnalignedRowsTakeTheScalarPath) {
  const Shape shape{3, 64};
  const Inputs in = random_inputs(shape, 73);
  const Reference want = reference_rmsnorm_backward(in, shape, false);
  auto shifted = [](const std::vector<float>& values) {
    std::vector<float> out(values.size() + 1, 9.0f);
    std::copy(values.begin(), values.end(), out.begin() + 1);
    return out;
  };
  DeviceBuffer<float> x(shifted(in.x)), w(in.w), dy(shifted(in.dy)), dx(in.x.size() + 1), dw(in.w.size());
  dw.upload(std::vector<float>(in.w.size(), kWeightGradStart));
  DeviceBuffer<float> rstd(std::vector<float>(want.rstd.begin(), want.rstd.end()));
  const std::size_t bytes = device::rmsnorm_backward_workspace_bytes(3, 64);
  DeviceBuffer<unsigned char> workspace(bytes);
  device::rmsnorm_backward(dx.data() + 1, dw.data(), dy.data() + 1, x.data() + 1, w.data(), rstd.data(), 3, 64, false,
                           workspace.data(), bytes, nullptr);
  const std::vector<float> got = dx.download();
  EXPECT_TRUE(close_to_scale({got.begin() + 1, got.end()}, want.dx, want.dx_scale, kF32Relative));
  EXPECT_TRUE(close_to_scale(dw.download(), want.dw, want.dw_scale, kF32Relative));
}

TEST(CudaRmsnormBackward, NanPropagatesToItsRowAndColumn) {
  const Shape shape{4, 16};
  const Inputs finite = random_inputs(shape, 74);
  Inputs in = finite;
  in.dy[2 * 16 + 7] = std::numeric_limits<float>::quiet_NaN();  // row 2, column 7
  const DeviceResults got = run_backward<float>(in, shape, false, reference_rmsnorm_backward(finite, shape, false));
  for (std::size_t i = 0; i < got.dx.size(); ++i) EXPECT_EQ(std::isnan(got.dx[i]), i / 16 == 2) << "dx " << i;
  for (std::size_t k = 0; k < 16; ++k) EXPECT_EQ(std::isnan(got.dw[k]), k == 7) << "dw " << k;
}

TEST(CudaRmsnormBackward, SameBitsUnderAnotherSchedule) {
  const Shape shape{300, 64};  // 38 blocks of rows, 10 chunks of weight-gradient partials
  const Inputs in = bf16_exact(random_inputs(shape, 75));
  const Reference want = reference_rmsnorm_backward(in, shape, false);
  DeviceResults first, second;
  with_schedule_seed(1, [&] { first = run_backward<__nv_bfloat16>(in, shape, false, want); });
  with_schedule_seed(987654321, [&] { second = run_backward<__nv_bfloat16>(in, shape, false, want); });
  EXPECT_TRUE(bitwise_equal(first.dx, second.dx));
  EXPECT_TRUE(bitwise_equal(first.dw, second.dw));
}

TEST(CudaRmsnormBackward, BadArgumentsAreErrors) {
  DeviceBuffer<float> x(32), w(16), dx(32), rstd(2), dw(16);
  const std::size_t bytes = device::rmsnorm_backward_workspace_bytes(2, 16);
  ASSERT_GT(bytes, 0u);
  DeviceBuffer<unsigned char> workspace(bytes);
  EXPECT_THROW(device::rmsnorm_backward(dx.data(), dw.data(), x.data(), x.data(), w.data(), rstd.data(), 2, 0, false,
                                        workspace.data(), bytes, nullptr),
               kiln::Error);
  EXPECT_THROW(device::rmsnorm_backward(dx.data(), dw.data(), x.data(), x.data(), w.data(), rstd.data(), -1, 16, false,
                                        workspace.data(), bytes, nullptr),
               kiln::Error);
  EXPECT_THROW(device::rmsnorm_backward(dx.data(), dw.data(), x.data(), x.data(), w.data(), nullptr, 2, 16, false,
                                        workspace.data(), bytes, nullptr),
               kiln::Error);
  EXPECT_THROW(device::rmsnorm_backward(dx.data(), dw.data(), x.data(), x.data(), w.data(), rstd.data(), 2, 16, false,
                                        workspace.data(), bytes - 4, nullptr),
               kiln::Error);
  // Without dw no workspace is needed.
  device::rmsnorm_backward(dx.data(), nullptr, x.data(), x.data(), w.data(), rstd.data(), 2, 16, false, nullptr, 0,
                           nullptr);
}

}  // namespace
}  // namespace kiln::cuda_test
