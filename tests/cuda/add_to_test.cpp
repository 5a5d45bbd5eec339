// kernels/cuda/add_to.cu under the emulated device against kiln::ops::add_to.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cuda/add_to.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_checks.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

struct Reference {
  std::vector<double> sum, scale;  // scale: |y| + |x|, the terms of the sum
};

Reference reference_add_to(const std::vector<float>& y, const std::vector<float>& x) {
  const auto n = static_cast<std::int64_t>(y.size());
  OwnedTensor ty(DType::F64, {n}), tx(DType::F64, {n});
  Reference out;
  for (std::size_t i = 0; i < y.size(); ++i) {
    ty.data<double>()[i] = y[i], tx.data<double>()[i] = x[i];
    out.scale.push_back(std::abs(static_cast<double>(y[i])) + std::abs(static_cast<double>(x[i])));
  }
  ops::add_to(ty, tx);
  out.sum.assign(ty.data<double>(), ty.data<double>() + n);
  return out;
}

// Lengths below, at and off the pack widths (4 f32, 8 bf16), and over several blocks.
const std::int64_t kLengths[] = {1, 3, 8, 37, 3 * 256 * 8 + 5};

// An fp32 sum of two values is exact to one rounding (2^-24 of |y| + |x|): 1e-5 of the terms'
// scale is far inside it even where y and x cancel.
TEST(CudaAddTo, F32MatchesTheCpuOp) {
  for (const std::int64_t n : kLengths) {
    for (const int offset : {0, 1}) {  // 1: off 16-byte alignment, the scalar path
      const auto size = static_cast<std::size_t>(n + offset);
      const std::vector<float> y = random_values(size, 31), x = random_values(size, 32);
      DeviceBuffer<float> dy(y), dx(x);
      device::add_to(dy.data() + offset, dx.data() + offset, n, nullptr);
      const Reference want = reference_add_to(y, x);
      std::vector<float> got = dy.download();
      if (offset) {
        EXPECT_EQ(got[0], y[0]) << "the element before the range is untouched";
      }
      std::vector<double> sum(want.sum.begin() + offset, want.sum.end()), scale(want.scale.begin() + offset, want.scale.end());
      got.erase(got.begin(), got.begin() + offset);
      EXPECT_TRUE(close_to_scale(got, sum, scale, kF32Relative)) << "n " << n << " offset " << offset;
    }
  }
}

// bf16: the fp32 sum of two bf16 values is rounded once, so within 2^-8 of its magnitude.
TEST(CudaAddTo, Bf16WithinOneRoundingOfTheFp32Sum) {
  for (const std::int64_t n : kLengths) {
    const std::vector<__nv_bfloat16> y = to_bf16(random_values(static_cast<std::size_t>(n), 33));
    const std::vector<__nv_bfloat16> x = to_bf16(random_values(static_cast<std::size_t>(n), 34));
    DeviceBuffer<__nv_bfloat16> dy(y), dx(x);
    device::add_to(dy.data(), dx.data(), n, nullptr);
    const Reference want = reference_add_to(to_f32(y), to_f32(x));
    EXPECT_TRUE(close_to_scale(to_f32(dy.download()), want.sum, want.scale, kF32Relative, kBF16Rounding)) << "n " << n;
  }
}

// More packs than one grid of threads covers (2112 blocks x 256 = 540672): the loop wraps.
TEST(CudaAddTo, MorePacksThanOneGrid) {
  const std::int64_t n = 2112 * 256 * 4 + 4 * 1000 + 3;
  const std::vector<float> y = random_values(static_cast<std::size_t>(n), 39), x = random_values(static_cast<std::size_t>(n), 40);
  DeviceBuffer<float> dy(y), dx(x);
  device::add_to(dy.data(), dx.data(), n, nullptr);
  const Reference want = reference_add_to(y, x);
  EXPECT_TRUE(close_to_scale(dy.download(), want.sum, want.scale, kF32Relative));
}

TEST(CudaAddTo, NanPropagates) {
  std::vector<float> y = random_values(13, 35), x = random_values(13, 36);
  x[2] = std::numeric_limits<float>::quiet_NaN();
  y[9] = std::numeric_limits<float>::quiet_NaN();
  DeviceBuffer<float> dy(y), dx(x);
  device::add_to(dy.data(), dx.data(), 13, nullptr);
  const std::vector<float> got = dy.download();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(std::isnan(got[i]), i == 2 || i == 9) << i;
}

TEST(CudaAddTo, SameResultUnderAnotherSchedule) {
  const std::vector<__nv_bfloat16> y = to_bf16(random_values(4099, 37)), x = to_bf16(random_values(4099, 38));
  DeviceBuffer<__nv_bfloat16> first(y), second(y), dx(x);
  with_schedule_seed(1, [&] { device::add_to(first.data(), dx.data(), 4099, nullptr); });
  with_schedule_seed(987654321, [&] { device::add_to(second.data(), dx.data(), 4099, nullptr); });
  EXPECT_TRUE(bitwise_equal(to_f32(first.download()), to_f32(second.download())));
}

TEST(CudaAddTo, BadArgumentsAreErrors) {
  DeviceBuffer<float> dy(8), dx(8);
  EXPECT_THROW(device::add_to(dy.data(), dx.data(), -1, nullptr), kiln::Error);
  EXPECT_THROW(device::add_to(dy.data(), nullptr, 8, nullptr), kiln::Error);
}

}  // namespace
}  // namespace kiln::cuda_test
