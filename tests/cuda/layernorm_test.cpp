// kernels/cuda/layernorm.cu under the emulated device against kiln::ops::layernorm_forward and
// layernorm_backward in f64 on the same inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cuda/layernorm.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_checks.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

constexpr float kEps = 1e-5f;
constexpr float kWeightGradStart = 0.25f;  // dw and db accumulate (+=) into this

struct Shape {
  std::int64_t rows, channels;
  std::size_t count() const { return static_cast<std::size_t>(rows * channels); }
};
// One row; channels below, at and off the pack widths (4 f32, 8 bf16) and above a warp's
// 32 lanes x 8. And more rows than one grid of warps covers (1056 blocks x 8 warps = 8448), run
// once (f32, accumulating) since it costs ~3 s of fibers under the emulator.
const Shape kShapes[] = {{1, 1}, {1, 37}, {3, 64}, {5, 100}, {2, 260}, {4, 1030}};
constexpr Shape kBeyondOneGrid{8448 + 21, 8};

std::vector<float> rounded_to_f32(const std::vector<double>& values) { return {values.begin(), values.end()}; }

struct Inputs {
  std::vector<float> x, w, b, dy, previous_dx;  // f32 values (bf16-exact for the bf16 tests)
};
Inputs random_inputs(Shape shape, std::uint32_t seed) {
  const auto c = static_cast<std::size_t>(shape.channels);
  return {random_values(shape.count(), seed), random_values(c, seed + 1, 0.5f, 1.5f),
          random_values(c, seed + 2, -1.0f, 1.0f), random_values(shape.count(), seed + 3),
          random_values(shape.count(), seed + 4)};
}
Inputs bf16_exact(Inputs in) {
  for (std::vector<float>* values : {&in.x, &in.w, &in.b, &in.dy, &in.previous_dx}) *values = to_f32(to_bf16(*values));
  return in;
}

// The f64 reference and, for each result, the magnitude of the terms it sums (its scale):
// y = (x - mean) rstd w + b cancels where the two terms meet, dx sums three terms, dw/db sum
// over rows; fp32 is accurate to ulps of those terms, not of a result that cancels.
struct Reference {
  std::vector<double> y, mean, rstd, dx, dw, db;
  std::vector<double> y_scale, mean_scale, dx_scale, dw_scale, db_scale;
};

Reference reference_layernorm(const Inputs& in, Shape shape, bool accumulate) {
  const std::int64_t n = shape.rows, c = shape.channels;
  const OwnedTensor x = f64_of(in.x, {n, c}), w = f64_of(in.w, {c}), b = f64_of(in.b, {c}), dy = f64_of(in.dy, {n, c});
  OwnedTensor y(DType::F64, {n, c}), mean(DType::F64, {n}), rstd(DType::F64, {n});
  ops::layernorm_forward(y, mean, rstd, x, w, b, kEps);
  const std::vector<float> start(static_cast<std::size_t>(c), kWeightGradStart);
  OwnedTensor dx = f64_of(in.previous_dx, {n, c}), dw = f64_of(start, {c}), db = f64_of(start, {c});
  ops::layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, accumulate ? ops::Accumulate::Yes : ops::Accumulate::No);
  Reference ref;
  ref.y = values_of(y), ref.mean = values_of(mean), ref.rstd = values_of(rstd);
  ref.dx = values_of(dx), ref.dw = values_of(dw), ref.db = values_of(db);
  ref.y_scale.resize(shape.count()), ref.dx_scale.resize(shape.count());
  ref.dw_scale.assign(static_cast<std::size_t>(c), kWeightGradStart);
  ref.db_scale.assign(static_cast<std::size_t>(c), kWeightGradStart);
  for (std::int64_t r = 0; r < n; ++r) {
    double abs_x = 0, abs_g = 0, abs_g_xhat = 0;
    for (std::int64_t k = 0; k < c; ++k) {
      const std::size_t i = static_cast<std::size_t>(r * c + k);
      const double xhat_scale = (std::abs(in.x[i]) + std::abs(ref.mean[r])) * ref.rstd[r];
      abs_x += std::abs(in.x[i]);
      abs_g += std::abs(in.dy[i] * in.w[k]);
      abs_g_xhat += std::abs(in.dy[i] * in.w[k]) * xhat_scale;
      ref.y_scale[i] = xhat_scale * std::abs(in.w[k]) + std::abs(in.b[k]);
      ref.dw_scale[k] += std::abs(in.dy[i]) * xhat_scale;
      ref.db_scale[k] += std::abs(in.dy[i]);
    }
    const auto channels = static_cast<double>(c);
    ref.mean_scale.push_back(abs_x / channels);
    for (std::int64_t k = 0; k < c; ++k) {
      const std::size_t i = static_cast<std::size_t>(r * c + k);
      const double xhat_scale = (std::abs(in.x[i]) + std::abs(ref.mean[r])) * ref.rstd[r];
      ref.dx_scale[i] = ref.rstd[r] * (std::abs(in.dy[i] * in.w[k]) + abs_g / channels + xhat_scale * abs_g_xhat / channels) +
                        (accumulate ? std::abs(in.previous_dx[i]) : 0.0);
    }
  }
  return ref;
}


struct DeviceResults {
  std::vector<float> y, mean, rstd, dx, dw, db;
};

// Forward, then the backward from the reference's statistics (rounded to f32) so that both
// backward computations start from the same mean and rstd.
template <class T>
DeviceResults run_layernorm(Shape shape, bool accumulate, const Reference& ref,
                            const std::vector<T>& x, const std::vector<T>& w, const std::vector<T>& b,
                            const std::vector<T>& dy, const std::vector<T>& previous_dx) {
  DeviceBuffer<T> dx_in(x), dw_in(w), db_in(b), dy_out(shape.count()), dgrad(dy), ddx(previous_dx);
  DeviceBuffer<float> dmean(static_cast<std::size_t>(shape.rows)), drstd(static_cast<std::size_t>(shape.rows));
  device::layernorm_forward(dy_out.data(), dmean.data(), drstd.data(), dx_in.data(), dw_in.data(), db_in.data(),
                            shape.rows, shape.channels, kEps, nullptr);
  DeviceBuffer<float> ref_mean(rounded_to_f32(ref.mean)), ref_rstd(rounded_to_f32(ref.rstd));
  const std::vector<float> dw_start(static_cast<std::size_t>(shape.channels), kWeightGradStart);
  DeviceBuffer<float> ddw(dw_start), ddb(dw_start);
  const std::size_t bytes = device::layernorm_backward_workspace_bytes(shape.rows, shape.channels);
  DeviceBuffer<unsigned char> workspace(bytes);
  workspace.fill_bytes(0xFF);  // NaN: every partial the finish pass reads must have been written
  device::layernorm_backward(ddx.data(), ddw.data(), ddb.data(), dgrad.data(), dx_in.data(), dw_in.data(),
                             ref_mean.data(), ref_rstd.data(), shape.rows, shape.channels, accumulate,
                             workspace.data(), bytes, nullptr);
  DeviceResults out;
  if constexpr (std::is_same_v<T, float>) {
    out.y = dy_out.download(), out.dx = ddx.download();
  } else {
    out.y = to_f32(dy_out.download()), out.dx = to_f32(ddx.download());
  }
  out.mean = dmean.download(), out.rstd = drstd.download();
  out.dw = ddw.download(), out.db = ddb.download();
  return out;
}

void expect_matches(const DeviceResults& got, const Reference& want, Shape shape, double bf16_share) {
  const double wg = weight_grad_tolerance(shape.rows, kF32Relative);
  EXPECT_TRUE(close_to_scale(got.y, want.y, want.y_scale, kF32Relative, bf16_share)) << "y " << shape.rows << "x" << shape.channels;
  EXPECT_TRUE(close_to_scale(got.mean, want.mean, want.mean_scale, kF32Relative)) << "mean " << shape.rows << "x" << shape.channels;
  EXPECT_TRUE(all_close(got.rstd, want.rstd, kF32Relative)) << "rstd " << shape.rows << "x" << shape.channels;
  EXPECT_TRUE(close_to_scale(got.dx, want.dx, want.dx_scale, kF32Relative, bf16_share)) << "dx " << shape.rows << "x" << shape.channels;
  EXPECT_TRUE(close_to_scale(got.dw, want.dw, want.dw_scale, wg)) << "dw " << shape.rows << "x" << shape.channels;
  EXPECT_TRUE(close_to_scale(got.db, want.db, want.db_scale, wg)) << "db " << shape.rows << "x" << shape.channels;
}

void expect_f32_matches(Shape shape, bool accumulate) {
  const Inputs in = random_inputs(shape, 61);
  const Reference want = reference_layernorm(in, shape, accumulate);
  const DeviceResults got = run_layernorm<float>(shape, accumulate, want, in.x, in.w, in.b, in.dy, in.previous_dx);
  expect_matches(got, want, shape, 0.0);
}

TEST(CudaLayernorm, F32MatchesTheCpuOpForAwkwardShapes) {
  for (const Shape& shape : kShapes) {
    expect_f32_matches(shape, false);
    expect_f32_matches(shape, true);
  }
}

TEST(CudaLayernorm, F32MoreRowsThanOneGrid) { expect_f32_matches(kBeyondOneGrid, true); }

// bf16 storage: inputs exact in fp32; y and dx are the fp32 results rounded once (2^-8 of
// their magnitude more); mean, rstd, dw and db stay f32.
TEST(CudaLayernorm, Bf16WithinOneRoundingOfTheFp32Result) {
  for (const Shape& shape : kShapes) {
    const Inputs in = bf16_exact(random_inputs(shape, 62));
    const Reference want = reference_layernorm(in, shape, true);
    const DeviceResults got = run_layernorm<__nv_bfloat16>(shape, true, want, to_bf16(in.x), to_bf16(in.w),
                                                           to_bf16(in.b), to_bf16(in.dy), to_bf16(in.previous_dx));
    expect_matches(got, want, shape, kBF16Rounding);
  }
}

TEST(CudaLayernorm, UnalignedRowsTakeTheScalarPath) {
  const Shape shape{3, 64};
  const Inputs in = random_inputs(shape, 63);
  std::vector<float> shifted(in.x.size() + 1, 9.0f);
  std::copy(in.x.begin(), in.x.end(), shifted.begin() + 1);
  DeviceBuffer<float> x(shifted), w(in.w), b(in.b), y(shifted.size());
  device::layernorm_forward(y.data() + 1, nullptr, nullptr, x.data() + 1, w.data(), b.data(), 3, 64, kEps, nullptr);
  const Reference want = reference_layernorm(in, shape, false);
  const std::vector<float> got = y.download();
  EXPECT_TRUE(close_to_scale({got.begin() + 1, got.end()}, want.y, want.y_scale, kF32Relative));
}

TEST(CudaLayernorm, NanPropagatesToItsRowAndColumn) {
  const Shape shape{4, 16};
  Inputs in = random_inputs(shape, 64);
  in.x[1 * 16 + 5] = std::numeric_limits<float>::quiet_NaN();   // row 1 of the forward
  in.dy[2 * 16 + 7] = std::numeric_limits<float>::quiet_NaN();  // row 2, column 7 of the backward
  const Reference finite_stats = reference_layernorm(random_inputs(shape, 64), shape, false);
  const DeviceResults got = run_layernorm<float>(shape, false, finite_stats, in.x, in.w, in.b, in.dy, in.previous_dx);
  for (std::size_t i = 0; i < got.y.size(); ++i) EXPECT_EQ(std::isnan(got.y[i]), i / 16 == 1) << "y " << i;
  for (std::size_t r = 0; r < 4; ++r) EXPECT_EQ(std::isnan(got.mean[r]), r == 1) << "mean " << r;
  // The backward ran on finite statistics: x's NaN (row 1) and dy's (row 2) both reach their rows.
  for (std::size_t i = 0; i < got.dx.size(); ++i) EXPECT_EQ(std::isnan(got.dx[i]), i / 16 == 1 || i / 16 == 2) << "dx " << i;
  for (std::size_t k = 0; k < 16; ++k) {
    EXPECT_EQ(std::isnan(got.db[k]), k == 7) << "db " << k;
    EXPECT_EQ(std::isnan(got.dw[k]), k == 5 || k == 7) << "dw " << k;
  }
}

TEST(CudaLayernorm, SameBitsUnderAnotherSchedule) {
  const Shape shape{300, 64};  // 38 blocks of rows, 10 chunks of weight-gradient partials
  const Inputs in = bf16_exact(random_inputs(shape, 65));
  const Reference want = reference_layernorm(in, shape, false);
  DeviceResults runs[2];
  const std::uint64_t seeds[2] = {1, 987654321};
  for (int i = 0; i < 2; ++i)
    with_schedule_seed(seeds[i], [&] {
      runs[i] = run_layernorm<__nv_bfloat16>(shape, false, want, to_bf16(in.x), to_bf16(in.w), to_bf16(in.b),
                                             to_bf16(in.dy), to_bf16(in.previous_dx));
    });
  EXPECT_TRUE(bitwise_equal(runs[0].y, runs[1].y));
  EXPECT_TRUE(bitwise_equal(runs[0].dx, runs[1].dx));
  EXPECT_TRUE(bitwise_equal(runs[0].dw, runs[1].dw));
  EXPECT_TRUE(bitwise_equal(runs[0].db, runs[1].db));
}

TEST(CudaLayernorm, BadArgumentsAreErrors) {
  DeviceBuffer<float> x(32), w(16), b(16), y(32), stats(2), dw(16);
  EXPECT_THROW(device::layernorm_forward(y.data(), stats.data(), stats.data(), x.data(), w.data(), b.data(), 2, 0, kEps, nullptr), kiln::Error);
  EXPECT_THROW(device::layernorm_forward(y.data(), stats.data(), stats.data(), x.data(), w.data(), b.data(), -1, 16, kEps, nullptr), kiln::Error);
  EXPECT_THROW(device::layernorm_forward(y.data(), nullptr, nullptr, nullptr, w.data(), b.data(), 2, 16, kEps, nullptr), kiln::Error);
  const std::size_t bytes = device::layernorm_backward_workspace_bytes(2, 16);
  ASSERT_GT(bytes, 0u);
  DeviceBuffer<unsigned char> workspace(bytes);
  EXPECT_THROW(device::layernorm_backward(y.data(), dw.data(), nullptr, x.data(), x.data(), w.data(), stats.data(),
                                          stats.data(), 2, 16, false, workspace.data(), bytes - 4, nullptr),
               kiln::Error);
  EXPECT_THROW(device::layernorm_backward(y.data(), dw.data(), nullptr, x.data(), x.data(), w.data(), nullptr,
                                          stats.data(), 2, 16, false, workspace.data(), bytes, nullptr),
               kiln::Error);
}

}  // namespace
}  // namespace kiln::cuda_test
