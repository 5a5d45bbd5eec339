// Hopper's warpgroup MMA (kernels/cuda/warpgroup_mma.cuh) on the emulated device: products
// against a plain loop for both B layouts, chaining, and each contract violation the emulator
// reports (emulation/warpgroup_mma.hpp). Emulation only: the probe kernels are in this file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/async_copy.cuh"
#include "kernels/cuda/warpgroup_mma.cuh"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;
using bf16 = __nv_bfloat16;
using mma_layout::a_position;
using mma_layout::c_position;

constexpr int kM = 64, kN = 64, kK = 32;  // two k-steps of m64n64k16

// What the probe kernel does wrong, if anything.
enum class Fault { none, no_fence, read_before_wait, overwrite_before_wait, copy_without_proxy_fence, uses_garbage_c };
// Where A comes from: registers, or shared memory (K-major, after B).
enum class ASource { registers, shared };

// Byte offset of element (mn, k) of a 64 x 32 operand in core matrices, core (mn / 8, k / 8)
// at 128 (mn / 8 * 4 + k / 8) (K-major rows: 8 k of one mn) or, N-major, rows of 8 n of one k
// with core (k / 8, n / 8) at 128 (k / 8 * 8 + n / 8).
int k_major_offset(int mn, int k) { return 128 * (mn / 8 * (kK / 8) + k / 8) + 16 * (mn % 8) + 2 * (k % 8); }
int n_major_offset(int n, int k) { return 128 * (k / 8 * (kN / 8) + n / 8) + 16 * (k % 8) + 2 * (n % 8); }

// d (64 x 64) = a (64 x 32, row-major) b (32 x 64, b[k][n]), one warpgroup; B is staged into
// shared memory K-major or N-major, A comes from registers.
__global__ void warpgroup_product(float* d, const bf16* a, const bf16* b, bool n_major, Fault fault, ASource source) {
  KILN_DYNAMIC_SHARED(bf16, shared);
  bf16* const a_shared = shared + kN * kK;
  const int thread = static_cast<int>(threadIdx.x), warp = thread / 32, lane = thread % 32;
  if (fault == Fault::copy_without_proxy_fence) {
    // 16-byte words of B by cp.async: word w holds elements 8w .. 8w + 7 of the tile's bytes.
    for (int w = thread; w < kN * kK / 8; w += 128) {
      const int n = w / (kK / 8), k = 8 * (w % (kK / 8));  // k-major: 8 consecutive k of one n
      device::async_copy_16(shared + k_major_offset(n, k) / 2, b + w * 8, true);  // b given as [n][k] here
    }
    device::async_copy_commit();
    device::async_copy_wait<0>();
  } else {
    for (int e = thread; e < kN * kK; e += 128) {
      const int k = e / kN, n = e % kN;
      shared[(n_major ? n_major_offset(n, k) : k_major_offset(n, k)) / 2] = b[e];
    }
    for (int e = thread; e < kM * kK; e += 128) a_shared[k_major_offset(e / kK, e % kK) / 2] = a[e];
    device::fence_shared_for_async_proxy();
  }
  __syncthreads();
  device::MmaFragmentA fa[kK / 16];
  for (int s = 0; s < kK / 16; ++s)
    for (int j = 0; j < 4; ++j) {
      const auto low = a_position(lane, 2 * j), high = a_position(lane, 2 * j + 1);
      const int row0 = 16 * warp + low.row, row1 = 16 * warp + high.row;
      fa[s].reg[j] = device::pack_bf16_pair(a[row0 * kK + 16 * s + low.col], a[row1 * kK + 16 * s + high.col]);
    }
  device::WarpgroupAccumulator acc;
  for (auto& tile : acc)
    for (float& x : tile.reg) x = fault == Fault::uses_garbage_c ? 1000.0f : 0.0f;
  if (fault != Fault::no_fence) device::warpgroup_fence();
  for (int s = 0; s < kK / 16; ++s) {
    // k-step s: core columns 2s, 2s + 1 (K-major) or core rows 2s, 2s + 1 (N-major).
    const std::uint64_t descriptor =
        n_major ? device::shared_matrix_descriptor(shared + n_major_offset(0, 16 * s) / 2, 128 * (kN / 8), 128)
                : device::shared_matrix_descriptor(shared + k_major_offset(0, 16 * s) / 2, 128, 128 * (kK / 8));
    const bool accumulate = fault == Fault::uses_garbage_c ? s > 0 : true;
    const std::uint64_t a_descriptor =
        device::shared_matrix_descriptor(a_shared + k_major_offset(0, 16 * s) / 2, 128, 128 * (kK / 8));
    if (source == ASource::shared && n_major)
      device::warpgroup_mma<true>(acc, a_descriptor, descriptor, accumulate);
    else if (source == ASource::shared)
      device::warpgroup_mma<false>(acc, a_descriptor, descriptor, accumulate);
    else if (n_major)
      device::warpgroup_mma<true>(acc, fa[s], descriptor, accumulate);
    else
      device::warpgroup_mma<false>(acc, fa[s], descriptor, accumulate);
  }
  device::warpgroup_commit();
  if (fault == Fault::overwrite_before_wait) {
    if (thread == 5) shared[3] = __float2bfloat16_rn(7.0f);
    __syncthreads();  // before any thread's wait
  }
  if (fault != Fault::read_before_wait) device::warpgroup_wait<0>(acc);
  for (int i = 0; i < kN / 2; ++i) {
    const auto at = c_position(lane, i % 4);
    d[(16 * warp + at.row) * kN + 8 * (i / 4) + at.col] = acc[i / 4].reg[i % 4];
  }
  if (fault == Fault::read_before_wait) device::warpgroup_wait<0>(acc);
}

std::vector<float> small_integers(std::size_t count, int seed) {  // every product and sum exact
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<float>((static_cast<int>(i) * 5 + seed * 11) % 7 - 3);
  return values;
}

struct Operands {
  std::vector<float> a = small_integers(kM * kK, 1), b = small_integers(kK * kN, 2);
  std::vector<double> product() const {
    std::vector<double> d(kM * kN);
    for (int m = 0; m < kM; ++m)
      for (int n = 0; n < kN; ++n) {
        double sum = 0;
        for (int k = 0; k < kK; ++k) sum += static_cast<double>(a[m * kK + k]) * b[k * kN + n];
        d[m * kN + n] = sum;
      }
    return d;
  }
};

std::vector<float> run(const Operands& x, bool n_major, Fault fault, const std::vector<float>* b_override = nullptr,
                       unsigned threads = 128, ASource source = ASource::registers) {
  DeviceBuffer<bf16> da(to_bf16(x.a)), db(to_bf16(b_override ? *b_override : x.b));
  DeviceBuffer<float> dd(kM * kN);
  KILN_LAUNCH(warpgroup_product, dim3(1), dim3(threads), (kN + kM) * kK * sizeof(bf16), nullptr, dd.data(), da.data(),
              db.data(), n_major, fault, source);
  return dd.download();
}

void expect_error(const Operands& x, Fault fault, const std::string& words, const std::vector<float>* b = nullptr,
                  unsigned threads = 128) {
  try {
    run(x, false, fault, b, threads);
    FAIL() << "no error; expected one naming: " << words;
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find(words), std::string::npos) << error.what();
  }
}

TEST(EmulatedWarpgroupMma, DescriptorsEncodeAsThePtxIsaSays) {
  // The ISA's MN-major no-swizzle bf16 example: LBO 128 x 2 bytes encodes as 16, SBO 64 x 2 as 8.
  const std::uint64_t bits = emu::encode_matrix_descriptor(0x1230, 256, 128);
  EXPECT_EQ(bits & 0x3FFF, 0x123u);
  EXPECT_EQ((bits >> 16) & 0x3FFF, 16u);
  EXPECT_EQ((bits >> 32) & 0x3FFF, 8u);
  EXPECT_EQ(bits >> 62, 0u);
  const emu::MatrixDescriptor d = emu::decode_matrix_descriptor(bits);
  EXPECT_EQ(d.start, 0x1230u);
  EXPECT_EQ(d.leading_bytes, 256u);
  EXPECT_EQ(d.stride_bytes, 128u);
}

TEST(EmulatedWarpgroupMma, ProductsMatchThePlainLoopForBothLayoutsOfBAndBothSourcesOfA) {
  const Operands x;
  EXPECT_TRUE(all_close(run(x, false, Fault::none), x.product(), 0.0, 0.0)) << "K-major B";
  EXPECT_TRUE(all_close(run(x, true, Fault::none), x.product(), 0.0, 0.0)) << "N-major B";
  // A from shared memory (K-major) instead of registers.
  EXPECT_TRUE(all_close(run(x, false, Fault::none, nullptr, 128, ASource::shared), x.product(), 0.0, 0.0)) << "A shared";
  EXPECT_TRUE(all_close(run(x, true, Fault::none, nullptr, 128, ASource::shared), x.product(), 0.0, 0.0)) << "A shared";
  // scale-d = 0 on the first k-step ignores what the accumulators held.
  EXPECT_TRUE(all_close(run(x, true, Fault::uses_garbage_c), x.product(), 0.0, 0.0)) << "scale-d 0";
}

TEST(EmulatedWarpgroupMma, AccumulatorsReadBeforeTheWaitAreNotTheProduct) {
  const Operands x;
  for (float value : run(x, false, Fault::read_before_wait)) ASSERT_TRUE(std::isnan(value));
}

TEST(EmulatedWarpgroupMma, ContractViolationsAreErrors) {
  const Operands x;
  expect_error(x, Fault::no_fence, "without a wgmma.fence");
  expect_error(x, Fault::overwrite_before_wait, "changed before its wgmma.wait_group");
  // B laid out [n][k] for the cp.async path, so that only the missing fence is wrong.
  std::vector<float> b_by_n(kN * kK);
  for (int k = 0; k < kK; ++k)
    for (int n = 0; n < kN; ++n) b_by_n[n * kK + k] = x.b[k * kN + n];
  expect_error(x, Fault::copy_without_proxy_fence, "fence.proxy.async", &b_by_n);
  expect_error(x, Fault::none, "whole warpgroups", nullptr, 96);
}

}  // namespace
}  // namespace kiln::cuda_test
