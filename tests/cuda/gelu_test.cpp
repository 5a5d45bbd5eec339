// kernels/cuda/gelu.cu under the emulated device against kiln::ops::gelu_forward/backward.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cuda/gelu.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_checks.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

OwnedTensor f64_tensor(const std::vector<float>& values) {
  OwnedTensor tensor(DType::F64, {static_cast<std::int64_t>(values.size())});
  for (std::size_t i = 0; i < values.size(); ++i) tensor.data<double>()[i] = values[i];
  return tensor;
}

std::vector<double> reference_forward(const std::vector<float>& x) {
  OwnedTensor tx = f64_tensor(x), ty(DType::F64, {static_cast<std::int64_t>(x.size())});
  ops::gelu_forward(ty, tx);
  return values_of(ty);
}

struct Backward {
  std::vector<double> dx, scale;
};
// ops::gelu_backward in f64, and the magnitude of the terms each dx sums: |previous dx| +
// |dy| (s + |2 x s (1 - s) u'|). gelu' crosses zero near x = -0.75, where the two terms of
// the slope cancel; fp32 is accurate to ulps of the terms there, not of the tiny result.
Backward reference_backward(const std::vector<float>& dx, const std::vector<float>& dy, const std::vector<float>& x,
                            bool accumulate) {
  OwnedTensor tdx = f64_tensor(dx), tdy = f64_tensor(dy), tx = f64_tensor(x);
  ops::gelu_backward(tdx, tdy, tx, accumulate ? ops::Accumulate::Yes : ops::Accumulate::No);
  Backward out{values_of(tdx), {}};
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x[i], k = std::sqrt(2.0 / std::acos(-1.0));
    const double s = 1.0 / (1.0 + std::exp(-2.0 * k * (v + 0.044715 * v * v * v)));
    const double slope_terms = s + std::abs(2.0 * v * s * (1.0 - s) * k * (1.0 + 3.0 * 0.044715 * v * v));
    out.scale.push_back(std::abs(static_cast<double>(dy[i])) * slope_terms + (accumulate ? std::abs(dx[i]) : 0.0));
  }
  return out;
}

// Lengths below, at and off the pack widths (4 f32, 8 bf16) and over several blocks of 256.
const std::int64_t kLengths[] = {1, 3, 8, 37, 3 * 256 * 8 + 5};

// fp32: exp, one division and a few products, each within an ulp or two: far inside 1e-5.
TEST(CudaGelu, F32ForwardMatchesTheCpuOp) {
  for (const std::int64_t n : kLengths) {
    for (const int offset : {0, 1}) {  // 1: off 16-byte alignment, the scalar path
      const std::vector<float> x = random_values(static_cast<std::size_t>(n + offset), 41, -5.0f, 5.0f);
      DeviceBuffer<float> dx(x), dy(x.size());
      device::gelu_forward(dy.data() + offset, dx.data() + offset, n, nullptr);
      const std::vector<float> got = dy.download();
      const std::vector<double> want = reference_forward({x.begin() + offset, x.end()});
      EXPECT_TRUE(all_close({got.begin() + offset, got.end()}, want, kF32Relative)) << "n " << n << " offset " << offset;
    }
  }
}

TEST(CudaGelu, F32BackwardMatchesTheCpuOpOverwritingAndAccumulating) {
  for (const std::int64_t n : kLengths) {
    for (const bool accumulate : {false, true}) {
      const auto size = static_cast<std::size_t>(n);
      const std::vector<float> x = random_values(size, 42, -5.0f, 5.0f), dy = random_values(size, 43);
      const std::vector<float> previous = random_values(size, 44);
      DeviceBuffer<float> ddx(previous), ddy(dy), dx_input(x);
      device::gelu_backward(ddx.data(), ddy.data(), dx_input.data(), n, accumulate, nullptr);
      const Backward want = reference_backward(previous, dy, x, accumulate);
      EXPECT_TRUE(close_to_scale(ddx.download(), want.dx, want.scale, kF32Relative)) << "n " << n << " acc " << accumulate;
    }
  }
}

// bf16: inputs exact in fp32, the fp32 result rounded once: within 2^-8 of it (plus the fp32
// error above, relative to the terms).
TEST(CudaGelu, Bf16WithinOneRoundingOfTheFp32Result) {
  for (const std::int64_t n : kLengths) {
    const auto size = static_cast<std::size_t>(n);
    const std::vector<__nv_bfloat16> x = to_bf16(random_values(size, 45, -5.0f, 5.0f)), dy = to_bf16(random_values(size, 46));
    const std::vector<__nv_bfloat16> previous = to_bf16(random_values(size, 47));
    DeviceBuffer<__nv_bfloat16> dx_input(x), dy_forward(size), ddy(dy), ddx(previous);
    device::gelu_forward(dy_forward.data(), dx_input.data(), n, nullptr);
    EXPECT_TRUE(all_close(to_f32(dy_forward.download()), reference_forward(to_f32(x)), kBF16Relative)) << "n " << n;
    device::gelu_backward(ddx.data(), ddy.data(), dx_input.data(), n, true, nullptr);
    const Backward want = reference_backward(to_f32(previous), to_f32(dy), to_f32(x), true);
    EXPECT_TRUE(close_to_scale(to_f32(ddx.download()), want.dx, want.scale, kF32Relative, kBF16Rounding)) << "n " << n;
  }
}

// More packs than one grid of threads covers (2112 blocks x 256 = 540672): the loop wraps.
TEST(CudaGelu, MorePacksThanOneGrid) {
  const std::int64_t n = 2112 * 256 * 4 + 4 * 1000 + 3;
  const std::vector<float> x = random_values(static_cast<std::size_t>(n), 51, -5.0f, 5.0f);
  DeviceBuffer<float> dx(x), dy(x.size());
  device::gelu_forward(dy.data(), dx.data(), n, nullptr);
  EXPECT_TRUE(all_close(dy.download(), reference_forward(x), kF32Relative));
}

TEST(CudaGelu, InPlaceAndNanPropagates) {
  std::vector<float> x = random_values(21, 48);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  DeviceBuffer<float> buffer(x), dy(std::vector<float>(21, 1.0f)), dx(21);
  device::gelu_backward(dx.data(), dy.data(), buffer.data(), 21, false, nullptr);
  device::gelu_forward(buffer.data(), buffer.data(), 21, nullptr);  // y = x, in place
  const std::vector<float> y = buffer.download(), grad = dx.download();
  const std::vector<double> want = reference_forward(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(std::isnan(y[i]), i == 5) << i;
    EXPECT_EQ(std::isnan(grad[i]), i == 5) << i;
    if (i != 5) {
      EXPECT_NEAR(y[i], want[i], kF32Relative * std::abs(want[i]) + 1e-7) << i;
    }
  }
}

TEST(CudaGelu, SameResultUnderAnotherSchedule) {
  const std::vector<float> x = random_values(4099, 49), dy = random_values(4099, 50);
  DeviceBuffer<float> dx_input(x), ddy(dy), first(4099), second(4099);
  with_schedule_seed(1, [&] { device::gelu_backward(first.data(), ddy.data(), dx_input.data(), 4099, false, nullptr); });
  with_schedule_seed(987654321, [&] { device::gelu_backward(second.data(), ddy.data(), dx_input.data(), 4099, false, nullptr); });
  EXPECT_TRUE(bitwise_equal(first.download(), second.download()));
}

TEST(CudaGelu, BadArgumentsAreErrors) {
  DeviceBuffer<float> a(8), b(8), c(8);
  EXPECT_THROW(device::gelu_forward(a.data(), b.data(), -1, nullptr), kiln::Error);
  EXPECT_THROW(device::gelu_forward(a.data(), nullptr, 8, nullptr), kiln::Error);
  EXPECT_THROW(device::gelu_backward(a.data(), b.data(), nullptr, 8, false, nullptr), kiln::Error);
}

}  // namespace
}  // namespace kiln::cuda_test
