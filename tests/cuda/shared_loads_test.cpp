// The shared-memory staging instructions of the tensor-core kernels on the emulated device:
// ldmatrix (mma.cuh) and cp.async (async_copy.cuh) against the PTX ISA's definitions written
// out here by hand; that the emulator sees a missing wait, a misaligned address and a partial
// warp. (The probe kernels live here, so this test is not in kiln_cuda_tests; on the GPU the
// attention kernels' tests exercise the inline PTX.)
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/async_copy.cuh"
#include "kernels/cuda/emulation/async_copy.hpp"
#include "kernels/cuda/mma.cuh"
#include "tests/cuda/device_buffer.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

constexpr int kStride = 24;  // 16-bit elements per shared row: 48 bytes, rows 16-byte aligned

// The 16-bit value at (row, column) of matrix m of the test input: distinct for every element.
std::uint16_t element(int m, int row, int column) { return static_cast<std::uint16_t>(1000 * m + 10 * row + column); }

// One warp: four 8x8 matrices from global (row-major, 8 wide) into shared rows of kStride
// elements, matrix m at rows 8m .. 8m + 7; then ldmatrix x4 (plain and .trans) with lane 8m + r
// pointing at row r of matrix m; out[lane * 8 + m] plain, out[lane * 8 + 4 + m] transposed.
__global__ void load_matrices(unsigned* out, const std::uint16_t* matrices) {
  __align__(16) __shared__ std::uint16_t rows[32 * kStride];
  const int lane = static_cast<int>(threadIdx.x);
  for (int c = 0; c < 8; ++c) rows[lane * kStride + c] = matrices[lane * 8 + c];
  __syncwarp();
  unsigned plain[4], transposed[4];
  device::load_matrices_x4(plain, rows + lane * kStride);
  device::load_matrices_x4_transposed(transposed, rows + lane * kStride);
  for (int m = 0; m < 4; ++m) out[lane * 8 + m] = plain[m], out[lane * 8 + 4 + m] = transposed[m];
}

unsigned pair(std::uint16_t low, std::uint16_t high) { return low | (static_cast<unsigned>(high) << 16); }

TEST(CudaSharedLoads, LdmatrixGivesEachLaneThePtxFragmentPlainAndTransposed) {
  std::vector<std::uint16_t> matrices(4 * 64);
  for (int m = 0; m < 4; ++m)
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) matrices[m * 64 + r * 8 + c] = element(m, r, c);
  DeviceBuffer<std::uint16_t> input(matrices);
  DeviceBuffer<unsigned> out(32 * 8);
  KILN_LAUNCH(load_matrices, dim3(1), dim3(32), 0, nullptr, out.data(), input.data());
  const std::vector<unsigned> got = out.download();
  for (int lane = 0; lane < 32; ++lane) {
    const int row = lane / 4, column = 2 * (lane % 4);
    for (int m = 0; m < 4; ++m) {
      EXPECT_EQ(got[lane * 8 + m], pair(element(m, row, column), element(m, row, column + 1))) << lane << " " << m;
      // .trans: the same lanes hold the transposed matrix's fragment.
      EXPECT_EQ(got[lane * 8 + 4 + m], pair(element(m, column, row), element(m, column + 1, row))) << lane << " " << m;
    }
  }
}

// A block of 64 threads copies 16-byte words of `src` into dynamic shared memory with
// cp.async in two groups (words 0..63, then 64..127), word w zero-filled when w % 5 == 4, and
// writes shared back to `out`: group 0 after wait_group 1 (group 1 may still be in flight),
// group 1 after wait_group 0. `skip_wait`: read group 1 without waiting (a kernel bug).
__global__ void copy_in_groups(uint4* out, const uint4* src, int skip_wait) {
  KILN_DYNAMIC_SHARED(uint4, staged);
  const int t = static_cast<int>(threadIdx.x);
  for (int group = 0; group < 2; ++group) {
    const int w = 64 * group + t;
    device::async_copy_16(staged + w, src + w, w % 5 != 4);
    device::async_copy_commit();
  }
  device::async_copy_wait<1>();
  __syncthreads();
  out[t] = staged[t];
  if (!skip_wait) device::async_copy_wait<0>();
  __syncthreads();
  out[64 + t] = staged[64 + t];
}

std::vector<uint4> words(int count) {
  std::vector<uint4> values(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const auto u = static_cast<unsigned>(i);
    values[static_cast<std::size_t>(i)] = make_uint4(4 * u + 1, 4 * u + 2, 4 * u + 3, 4 * u + 4);
  }
  return values;
}

bool same(const uint4& a, const uint4& b) { return a.x == b.x && a.y == b.y && a.z == b.z && a.w == b.w; }

// Pins the emulator's cp.async landing for one test.
struct PinnedLanding {
  explicit PinnedLanding(emu::CopyLanding landing) { emu::pin_async_copy_landing(landing); }
  ~PinnedLanding() { emu::pin_async_copy_landing(emu::CopyLanding::drawn); }
};

// Whether the copies land early or late, a kernel that waits and synchronises sees every word
// (zeros where zero-filled).
TEST(CudaSharedLoads, AsyncCopiesLandByTheirGroupsWaitWithZeroFill) {
  const std::vector<uint4> source = words(128);
  for (const auto landing : {emu::CopyLanding::early, emu::CopyLanding::late}) {
    const PinnedLanding pinned(landing);
    DeviceBuffer<uint4> src(source), out(128);
    KILN_LAUNCH(copy_in_groups, dim3(1), dim3(64), 128 * sizeof(uint4), nullptr, out.data(), src.data(), 0);
    const std::vector<uint4> got = out.download();
    for (int w = 0; w < 128; ++w) {
      const uint4 want = w % 5 == 4 ? make_uint4(0, 0, 0, 0) : source[static_cast<std::size_t>(w)];
      EXPECT_TRUE(same(got[static_cast<std::size_t>(w)], want)) << "word " << w;
    }
  }
}

// Landing late, reading before the wait sees the staging buffer's old bytes (dynamic shared
// memory starts as 0xFF poison): the missing wait shows as a wrong result.
TEST(CudaSharedLoads, EmulatorShowsAReadBeforeTheWaitAsStaleBytes) {
  const PinnedLanding pinned(emu::CopyLanding::late);
  const std::vector<uint4> source = words(128);
  DeviceBuffer<uint4> src(source), out(128);
  KILN_LAUNCH(copy_in_groups, dim3(1), dim3(64), 128 * sizeof(uint4), nullptr, out.data(), src.data(), 1);
  const std::vector<uint4> got = out.download();
  EXPECT_TRUE(same(got[0], source[0]));  // group 0 was waited for
  EXPECT_TRUE(same(got[65], make_uint4(~0u, ~0u, ~0u, ~0u)));  // group 1 was not
}

// Thread t fills word t, and after a barrier copies src[t] into word (t + 1) % 64, the word a
// neighbour reads next without another barrier (a kernel bug: staging into a buffer still being
// read). out[t] is the word thread t then reads.
__global__ void stage_into_a_buffer_being_read(uint4* out, const uint4* src) {
  KILN_DYNAMIC_SHARED(uint4, staged);
  const int t = static_cast<int>(threadIdx.x);
  staged[t] = make_uint4(7, 7, 7, 7);
  __syncthreads();
  device::async_copy_16(staged + (t + 1) % 64, src + t, true);
  device::async_copy_commit();
  out[t] = staged[t];
  device::async_copy_wait<0>();
}

// Landing early, the copy issued into a buffer other threads still read corrupts their reads.
TEST(CudaSharedLoads, EmulatorShowsStagingIntoABufferBeingReadAsCorruptReads) {
  const PinnedLanding pinned(emu::CopyLanding::early);
  DeviceBuffer<uint4> src(words(64)), out(64);
  KILN_LAUNCH(stage_into_a_buffer_being_read, dim3(1), dim3(64), 64 * sizeof(uint4), nullptr, out.data(), src.data());
  int corrupted = 0;
  for (const uint4& word : out.download()) corrupted += same(word, make_uint4(7, 7, 7, 7)) ? 0 : 1;
  EXPECT_GT(corrupted, 0);
}

__global__ void misaligned_copy(const uint4* src) {
  KILN_DYNAMIC_SHARED(unsigned char, staged);
  device::async_copy_16(staged + 8, src, true);
}

__global__ void ldmatrix_without_lane(unsigned* out, int skip_lane) {
  __align__(16) __shared__ std::uint16_t rows[32 * 8];
  const int lane = static_cast<int>(threadIdx.x);
  if (lane == skip_lane) return;
  unsigned reg[4];
  device::load_matrices_x4(reg, rows + 8 * lane);
  out[lane] = reg[0];
}

TEST(CudaSharedLoads, EmulatorRefusesMisalignedCopiesAndAPartialWarp) {
  DeviceBuffer<uint4> src(words(1));
  DeviceBuffer<unsigned> out(32);
  try {
    KILN_LAUNCH(misaligned_copy, dim3(1), dim3(1), 64, nullptr, src.data());
    FAIL() << "a misaligned cp.async ran";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("aligned"), std::string::npos) << error.what();
  }
  try {
    KILN_LAUNCH(ldmatrix_without_lane, dim3(1), dim3(32), 0, nullptr, out.data(), 3);
    FAIL() << "an ldmatrix without lane 3 ran";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("ldmatrix"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace kiln::cuda_test
