// kernels/cuda/cast.cu under the emulated device against kiln::ops::copy (f32 <-> bf16).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cuda/cast.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_checks.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

// ops::copy F32 -> BF16: the CPU backend's rounding, bit for bit.
std::vector<std::uint16_t> reference_bf16_bits(const std::vector<float>& x) {
  const auto n = static_cast<std::int64_t>(x.size());
  OwnedTensor source(DType::F32, {n}), target(DType::BF16, {n});
  for (std::size_t i = 0; i < x.size(); ++i) source.data<float>()[i] = x[i];
  ops::copy(target, source);
  return {reinterpret_cast<const std::uint16_t*>(target.data<BFloat16>()),
          reinterpret_cast<const std::uint16_t*>(target.data<BFloat16>()) + n};
}

std::vector<std::uint16_t> bits(const std::vector<__nv_bfloat16>& values) {
  std::vector<std::uint16_t> out;
  for (const __nv_bfloat16 value : values) out.push_back(bits_of(value));
  return out;
}

// Values over bf16's whole range: random significands at exponents from subnormal to near
// the overflow, exact ties (1 + 2^-8 rounds to 1, 1 + 3 * 2^-8 to 1 + 2^-6: nearest even),
// just below the largest bf16 (rounds to it) and above it (rounds to inf), infinities, zeros.
std::vector<float> awkward_values(std::size_t count, std::uint32_t seed) {
  std::vector<float> values = random_values(count, seed, 1.0f, 2.0f);
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = std::ldexp(i % 2 ? -values[i] : values[i], static_cast<int>(i * 37 % 250) - 130);
  const float specials[] = {1.0f + 1.0f / 256,  1.0f + 3.0f / 256,  -(1.0f + 1.0f / 256),
                            3.3895313e38f,      3.4e38f,            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 0.0f, -0.0f, 1e-40f};
  for (std::size_t i = 0; i < sizeof specials / sizeof specials[0] && i < values.size(); ++i) values[i * 3 % values.size()] = specials[i];
  return values;
}

// Lengths below, at and off the group of 8, and one over several blocks of 256 threads.
const std::int64_t kLengths[] = {1, 7, 8, 37, 3 * 256 * 8 + 5};

TEST(CudaCast, F32ToBf16RoundsToNearestEvenLikeTheCpuBackend) {
  for (const std::int64_t n : kLengths) {
    for (const int offset : {0, 1}) {  // 1: a pointer off 16-byte alignment takes the scalar path
      const std::vector<float> x = awkward_values(static_cast<std::size_t>(n), 21);
      std::vector<float> padded(static_cast<std::size_t>(n + offset), 5.0f);
      std::copy(x.begin(), x.end(), padded.begin() + offset);
      DeviceBuffer<float> dx(padded);
      DeviceBuffer<__nv_bfloat16> dy(static_cast<std::size_t>(n + offset));
      device::cast(dy.data() + offset, dx.data() + offset, n, nullptr);
      std::vector<std::uint16_t> got = bits(dy.download());
      got.erase(got.begin(), got.begin() + offset);
      EXPECT_EQ(got, reference_bf16_bits(x)) << "n " << n << " offset " << offset;
    }
  }
}

TEST(CudaCast, Bf16ToF32IsExact) {
  for (const std::int64_t n : kLengths) {
    const std::vector<__nv_bfloat16> x = to_bf16(awkward_values(static_cast<std::size_t>(n), 22));
    DeviceBuffer<__nv_bfloat16> dx(x);
    DeviceBuffer<float> dy(x.size());
    device::cast(dy.data(), dx.data(), n, nullptr);
    EXPECT_TRUE(bitwise_equal(dy.download(), to_f32(x))) << "n " << n;
  }
}

// More groups of 8 than one grid of threads covers (2112 blocks x 256 = 540672), so every
// thread's grid-stride loop wraps, then the scalar tail of 13.
TEST(CudaCast, MoreGroupsThanOneGrid) {
  const std::int64_t n = 2112 * 256 * 8 + 8 * 1000 + 13;
  const std::vector<float> x = awkward_values(static_cast<std::size_t>(n), 25);
  DeviceBuffer<float> dx(x);
  DeviceBuffer<__nv_bfloat16> dy(x.size());
  device::cast(dy.data(), dx.data(), n, nullptr);
  EXPECT_EQ(bits(dy.download()), reference_bf16_bits(x));
}

TEST(CudaCast, NanStaysNanBothWays) {
  std::vector<float> x = random_values(19, 23);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[16] = -std::numeric_limits<float>::quiet_NaN();
  x[17] = std::bit_cast<float>(0x7f800001u);  // a signalling NaN whose payload truncation would make inf
  DeviceBuffer<float> dx(x), back(x.size());
  DeviceBuffer<__nv_bfloat16> dy(x.size());
  device::cast(dy.data(), dx.data(), 19, nullptr);
  device::cast(back.data(), dy.data(), 19, nullptr);
  const std::vector<float> narrowed = to_f32(dy.download()), widened = back.download();
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(std::isnan(narrowed[i]), std::isnan(x[i])) << i;
    EXPECT_EQ(std::isnan(widened[i]), std::isnan(x[i])) << i;
  }
}

TEST(CudaCast, SameResultUnderAnotherSchedule) {
  const std::vector<float> x = awkward_values(4099, 24);
  DeviceBuffer<float> dx(x);
  DeviceBuffer<__nv_bfloat16> first(x.size()), second(x.size());
  with_schedule_seed(1, [&] { device::cast(first.data(), dx.data(), 4099, nullptr); });
  with_schedule_seed(987654321, [&] { device::cast(second.data(), dx.data(), 4099, nullptr); });
  EXPECT_EQ(bits(first.download()), bits(second.download()));
}

TEST(CudaCast, BadArgumentsAreErrors) {
  DeviceBuffer<float> dx(8);
  DeviceBuffer<__nv_bfloat16> dy(8);
  EXPECT_THROW(device::cast(dy.data(), dx.data(), -1, nullptr), kiln::Error);
  EXPECT_THROW(device::cast(nullptr, dx.data(), 8, nullptr), kiln::Error);
  EXPECT_THROW(device::cast(dx.data(), static_cast<const __nv_bfloat16*>(nullptr), 8, nullptr), kiln::Error);
  device::cast(dy.data(), dx.data(), 0, nullptr);  // nothing to do is not an error
}

}  // namespace
}  // namespace kiln::cuda_test
