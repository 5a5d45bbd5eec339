// The m16n8k16 bf16 tensor-core tile (kernels/cuda/mma.cuh) on the emulated device.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/mma.cuh"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;
using mma_layout::a_position;
using mma_layout::b_position;
using mma_layout::c_position;

// Spot checks against the PTX ISA figures, worked by hand (lane 5: group 1, member 1;
// lane 30: group 7, member 2), so the layout is pinned independently of the code using it.
TEST(CudaTensorCore, FragmentLayoutMatchesThePtxFigures) {
  EXPECT_EQ(a_position(0, 0).row, 0);
  EXPECT_EQ(a_position(0, 0).col, 0);
  EXPECT_EQ(a_position(5, 0).row, 1);
  EXPECT_EQ(a_position(5, 0).col, 2);
  EXPECT_EQ(a_position(5, 1).col, 3);
  EXPECT_EQ(a_position(5, 2).row, 9);
  EXPECT_EQ(a_position(5, 2).col, 2);
  EXPECT_EQ(a_position(5, 4).row, 1);
  EXPECT_EQ(a_position(5, 4).col, 10);
  EXPECT_EQ(a_position(5, 7).row, 9);
  EXPECT_EQ(a_position(5, 7).col, 11);
  EXPECT_EQ(a_position(30, 6).row, 15);
  EXPECT_EQ(a_position(30, 6).col, 12);
  EXPECT_EQ(b_position(5, 0).row, 2);
  EXPECT_EQ(b_position(5, 0).col, 1);
  EXPECT_EQ(b_position(30, 3).row, 13);
  EXPECT_EQ(b_position(30, 3).col, 7);
  EXPECT_EQ(c_position(5, 3).row, 9);
  EXPECT_EQ(c_position(5, 3).col, 3);
  EXPECT_EQ(c_position(30, 1).row, 7);
  EXPECT_EQ(c_position(30, 1).col, 5);
  // Every element of each matrix is held by exactly one (lane, register).
  std::vector<int> a(256), b(128), c(128);
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) ++a[a_position(lane, i).row * 16 + a_position(lane, i).col];
    for (int i = 0; i < 4; ++i) ++b[b_position(lane, i).row * 8 + b_position(lane, i).col];
    for (int i = 0; i < 4; ++i) ++c[c_position(lane, i).row * 8 + c_position(lane, i).col];
  }
  for (int count : a) EXPECT_EQ(count, 1);
  for (int count : b) EXPECT_EQ(count, 1);
  for (int count : c) EXPECT_EQ(count, 1);
}

// One warp: load the fragments from A [16][16], B [16][8] (k, n) and C [16][8] by the layout,
// multiply, store D. `skip_lane` >= 0 returns that lane before the mma (an error).
__global__ void mma_tile(float* d, const __nv_bfloat16* a, const __nv_bfloat16* b, const float* c, int skip_lane) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane == skip_lane) return;
  device::MmaFragmentA fa;
  device::MmaFragmentB fb;
  device::MmaAccumulator fc, fd;
  for (int j = 0; j < 4; ++j) {
    const auto low = a_position(lane, 2 * j), high = a_position(lane, 2 * j + 1);
    fa.reg[j] = device::pack_bf16_pair(a[low.row * 16 + low.col], a[high.row * 16 + high.col]);
  }
  for (int j = 0; j < 2; ++j) {
    const auto low = b_position(lane, 2 * j), high = b_position(lane, 2 * j + 1);
    fb.reg[j] = device::pack_bf16_pair(b[low.row * 8 + low.col], b[high.row * 8 + high.col]);
  }
  for (int i = 0; i < 4; ++i) fc.reg[i] = c[c_position(lane, i).row * 8 + c_position(lane, i).col];
  device::mma_m16n8k16(fd, fa, fb, fc);
  for (int i = 0; i < 4; ++i) d[c_position(lane, i).row * 8 + c_position(lane, i).col] = fd.reg[i];
}

// The plain loop: D[m][n] = C[m][n] + sum_k A[m][k] * B[k][n], in double.
std::vector<double> reference_tile(const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>& c) {
  std::vector<double> d(128);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      double sum = c[m * 8 + n];
      for (int k = 0; k < 16; ++k) sum += static_cast<double>(a[m * 16 + k]) * b[k * 8 + n];
      d[m * 8 + n] = sum;
    }
  return d;
}

std::vector<float> integers(std::size_t count, int seed) {  // small integers: every sum is exact
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<float>((static_cast<int>(i) * 7 + seed * 13) % 9 - 4);
  return values;
}

void check_tile(const std::vector<float>& a32, const std::vector<float>& b32, const std::vector<float>& c, double relative) {
  const std::vector<__nv_bfloat16> a = to_bf16(a32), b = to_bf16(b32);
  DeviceBuffer<__nv_bfloat16> da(a), db(b);
  DeviceBuffer<float> dc(c), dd(128);
  KILN_LAUNCH(mma_tile, dim3(1), dim3(32), 0, nullptr, dd.data(), da.data(), db.data(), dc.data(), -1);
  EXPECT_TRUE(all_close(dd.download(), reference_tile(to_f32(a), to_f32(b), c), relative, 0.0));
}

TEST(CudaTensorCore, TileMatchesThePlainLoop) {
  check_tile(integers(256, 1), integers(128, 2), integers(128, 3), 0.0);  // exact
  // Random bf16: fp32 sums of 16 exact products, in another order than the double reference.
  std::vector<float> c = random_values(128, 23);
  check_tile(random_values(256, 21), random_values(128, 22), c, kF32Relative);
}

TEST(CudaTensorCore, MmaNeedsTheWholeWarp) {
  const std::vector<__nv_bfloat16> a = to_bf16(integers(256, 1)), b = to_bf16(integers(128, 2));
  DeviceBuffer<__nv_bfloat16> da(a), db(b);
  DeviceBuffer<float> dc(std::vector<float>(128, 0.0f)), dd(128);
  try {
    KILN_LAUNCH(mma_tile, dim3(1), dim3(32), 0, nullptr, dd.data(), da.data(), db.data(), dc.data(), 9);
    FAIL() << "an mma without lane 9 ran";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("lane 9, which has already returned"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("mma.sync.m16n8k16"), std::string::npos) << error.what();
  }
  EXPECT_THROW(KILN_LAUNCH(mma_tile, dim3(1), dim3(16), 0, nullptr, dd.data(), da.data(), db.data(), dc.data(), -1),
               kiln::Error);
}

}  // namespace
}  // namespace kiln::cuda_test
