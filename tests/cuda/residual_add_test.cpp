// kernels/cuda/residual_add.cu under the emulated device against kiln::ops::add.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/residual_add.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

// ops::add in f64 over the (f32-exact) inputs.
std::vector<double> reference_add(const std::vector<float>& a, const std::vector<float>& b) {
  const auto n = static_cast<std::int64_t>(a.size());
  OwnedTensor ta(DType::F64, {n}), tb(DType::F64, {n}), out(DType::F64, {n});
  for (std::int64_t i = 0; i < n; ++i) ta.data<double>()[i] = a[i], tb.data<double>()[i] = b[i];
  ops::add(out, ta, tb);
  return {out.data<double>(), out.data<double>() + n};
}

// Lengths around the pack widths (4 f32, 8 bf16), one element, and more packs than one grid
// of threads covers in one stride.
const std::int64_t kLengths[] = {1, 3, 4, 7, 8, 9, 1001, 2112 * 256 * 4 + 13};

TEST(CudaResidualAdd, F32MatchesTheCpuOpForAwkwardLengths) {
  for (std::int64_t n : kLengths) {
    const auto count = static_cast<std::size_t>(n);
    const std::vector<float> a = random_values(count, 1), b = random_values(count, 2);
    DeviceBuffer<float> da(a), db(b), dy(count);
    device::residual_add(dy.data(), da.data(), db.data(), n, nullptr);
    EXPECT_TRUE(all_close(dy.download(), reference_add(a, b), kF32Relative)) << "n " << n;
  }
}

TEST(CudaResidualAdd, F32UnalignedAndInPlace) {
  constexpr std::int64_t n = 203;
  const std::vector<float> a = random_values(n + 1, 3), b = random_values(n + 1, 4);
  DeviceBuffer<float> da(a), db(b), dy(n + 1);
  // Offsets of one element: not 16-byte aligned, so every element takes the scalar path.
  device::residual_add(dy.data() + 1, da.data() + 1, db.data() + 1, n, nullptr);
  const std::vector<float> got = dy.download();
  const std::vector<double> want = reference_add({a.begin() + 1, a.end()}, {b.begin() + 1, b.end()});
  EXPECT_TRUE(all_close({got.begin() + 1, got.end()}, want, kF32Relative));
  device::residual_add(da.data(), da.data(), db.data(), n + 1, nullptr);  // y aliases a
  EXPECT_TRUE(all_close(da.download(), reference_add(a, b), kF32Relative));
}

TEST(CudaResidualAdd, Bf16IsTheFp32SumRoundedOnce) {
  for (std::int64_t n : {std::int64_t{1}, std::int64_t{7}, std::int64_t{8}, std::int64_t{17}, std::int64_t{4099}}) {
    const auto count = static_cast<std::size_t>(n);
    const std::vector<__nv_bfloat16> a = to_bf16(random_values(count, 5)), b = to_bf16(random_values(count, 6));
    DeviceBuffer<__nv_bfloat16> da(a), db(b), dy(count);
    device::residual_add(dy.data(), da.data(), db.data(), n, nullptr);
    const std::vector<double> sum = reference_add(to_f32(a), to_f32(b));
    const std::vector<float> got = to_f32(dy.download());
    EXPECT_TRUE(all_close(got, sum, kBF16Relative)) << "n " << n;
    // The sum of two bf16 is exact in fp32, so the result is that sum rounded once: bit-exact.
    for (std::size_t i = 0; i < count; ++i)
      ASSERT_EQ(bits_of(dy.download()[i]), kiln::to_bfloat16(static_cast<float>(sum[i])).bits) << "n " << n << " element " << i;
  }
}

TEST(CudaResidualAdd, NegativeLengthIsAnErrorNamingTheKernel) {
  DeviceBuffer<float> d(4);
  EXPECT_THROW(device::residual_add(d.data(), d.data(), d.data(), -1, nullptr), kiln::Error);
}

#if KILN_CUDA_EMULATED  // a GPU faults later, or (with HMM) reaches host memory
TEST(CudaResidualAdd, HostPointerIsAnErrorNamingTheKernel) {
  DeviceBuffer<float> d(4);
  std::vector<float> host(4);
  try {
    device::residual_add(host.data(), d.data(), d.data(), 4, nullptr);
    FAIL() << "a host output pointer was accepted";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("residual_add_kernel"), std::string::npos) << error.what();
  }
}
#endif

}  // namespace
}  // namespace kiln::cuda_test
