// Warp collectives on the emulated device: shuffles (all four, with widths), votes,
// __activemask, __syncwarp, and the mask errors real hardware leaves undefined.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#include "tests/cuda/device_buffer.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cuda_test {
namespace {

enum Variant : int { kIndex, kUp, kDown, kXor };

// Every lane offers 100 + lane (as float, int and double) and records what it receives.
__global__ void shuffle_all(int* out, int variant, int arg, int width) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const float as_float = 100.0f + static_cast<float>(lane);
  const double as_double = 100.0 + lane;
  int received = 0;
  double received_double = 0;
  switch (variant) {
    case kIndex:
      received = static_cast<int>(__shfl_sync(0xffffffffu, as_float, arg, width));
      received_double = __shfl_sync(0xffffffffu, as_double, arg, width);
      break;
    case kUp:
      received = static_cast<int>(__shfl_up_sync(0xffffffffu, as_float, static_cast<unsigned>(arg), width));
      received_double = __shfl_up_sync(0xffffffffu, as_double, static_cast<unsigned>(arg), width);
      break;
    case kDown:
      received = __shfl_down_sync(0xffffffffu, 100 + lane, static_cast<unsigned>(arg), width);
      received_double = __shfl_down_sync(0xffffffffu, as_double, static_cast<unsigned>(arg), width);
      break;
    default:
      received = __shfl_xor_sync(0xffffffffu, 100 + lane, arg, width);
      received_double = __shfl_xor_sync(0xffffffffu, as_double, arg, width);
  }
  out[threadIdx.x] = received == static_cast<int>(received_double) ? received : -1;
}

// The lane each lane reads, from the CUDA programming guide's rules written out plainly.
int expected_source(Variant variant, int lane, int arg, int width) {
  const int group_start = lane - lane % width;
  switch (variant) {
    case kIndex: return group_start + ((arg % width) + width) % width;
    case kUp: return lane % width >= arg ? lane - arg : lane;
    case kDown: return lane % width + arg < width ? lane + arg : lane;
    case kXor: return (lane ^ arg) < group_start + width ? lane ^ arg : lane;
  }
  return -1;
}

TEST(CudaEmulatorWarp, ShufflesFollowTheGuideForEveryVariantAndWidth) {
  DeviceBuffer<int> out(64);  // two warps: lanes are per warp
  const Variant variants[] = {kIndex, kUp, kDown, kXor};
  for (Variant variant : variants)
    for (int width : {32, 16, 8, 4, 2, 1})
      for (int arg : {0, 1, 3, 5, 16, 31}) {
        KILN_LAUNCH(shuffle_all, dim3(1), dim3(64), 0, nullptr, out.data(), static_cast<int>(variant), arg, width);
        const std::vector<int> got = out.download();
        for (int thread = 0; thread < 64; ++thread)
          ASSERT_EQ(got[thread], 100 + expected_source(variant, thread % 32, arg, width))
              << "variant " << variant << " width " << width << " arg " << arg << " thread " << thread;
      }
}

TEST(CudaEmulatorWarp, ShuffleTableSpotChecks) {  // a few cases worked by hand, independent of expected_source
  DeviceBuffer<int> out(32);
  KILN_LAUNCH(shuffle_all, dim3(1), dim3(32), 0, nullptr, out.data(), static_cast<int>(kXor), 1, 32);
  EXPECT_EQ(out.download()[6], 107);
  KILN_LAUNCH(shuffle_all, dim3(1), dim3(32), 0, nullptr, out.data(), static_cast<int>(kDown), 4, 8);
  EXPECT_EQ(out.download()[3], 107);   // 3 + 4 stays in lanes 0..7
  EXPECT_EQ(out.download()[5], 105);   // 5 + 4 leaves the group: own value
  KILN_LAUNCH(shuffle_all, dim3(1), dim3(32), 0, nullptr, out.data(), static_cast<int>(kIndex), 3, 8);
  EXPECT_EQ(out.download()[13], 111);  // lane 3 of the group 8..15
  KILN_LAUNCH(shuffle_all, dim3(1), dim3(32), 0, nullptr, out.data(), static_cast<int>(kUp), 2, 16);
  EXPECT_EQ(out.download()[17], 117);  // 17 - 2 leaves the group 16..31: own value
  EXPECT_EQ(out.download()[18], 116);
}

// Votes: lane predicates are "lane is odd" and "lane < limit".
__global__ void votes(unsigned* out, int limit) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const unsigned ballot = __ballot_sync(0xffffffffu, lane % 2);
  const int any = __any_sync(0xffffffffu, lane < limit);
  const int all = __all_sync(0xffffffffu, lane < limit);
  unsigned half = 0;
  if (lane < 16) half = __ballot_sync(0x0000ffffu, lane < limit);  // a mask of 16 lanes
  else half = __ballot_sync(0xffff0000u, lane < limit);
  out[threadIdx.x * 4 + 0] = ballot;
  out[threadIdx.x * 4 + 1] = static_cast<unsigned>(any);
  out[threadIdx.x * 4 + 2] = static_cast<unsigned>(all);
  out[threadIdx.x * 4 + 3] = half;
}

TEST(CudaEmulatorWarp, VotesOverFullAndPartialMasks) {
  DeviceBuffer<unsigned> out(32 * 4);
  for (int limit : {0, 5, 20, 32}) {
    KILN_LAUNCH(votes, dim3(1), dim3(32), 0, nullptr, out.data(), limit);
    const std::vector<unsigned> got = out.download();
    const unsigned below = limit == 32 ? 0xffffffffu : (1u << limit) - 1;
    for (int lane = 0; lane < 32; ++lane) {
      EXPECT_EQ(got[lane * 4 + 0], 0xaaaaaaaau);
      EXPECT_EQ(got[lane * 4 + 1], limit > 0 ? 1u : 0u);
      EXPECT_EQ(got[lane * 4 + 2], limit == 32 ? 1u : 0u);
      EXPECT_EQ(got[lane * 4 + 3], below & (lane < 16 ? 0x0000ffffu : 0xffff0000u)) << "limit " << limit;
    }
  }
}

// The bit operations kernels use on ballot masks, against values worked by hand (the same
// kernel runs on the GPU in kiln_cuda_tests).
__global__ void bit_operations(int* out, const unsigned* words, int count) {
  const int i = static_cast<int>(threadIdx.x);
  if (i >= count) return;
  out[3 * i] = __ffs(static_cast<int>(words[i]));
  out[3 * i + 1] = __clz(static_cast<int>(words[i]));
  out[3 * i + 2] = __popc(words[i]);
}

TEST(CudaEmulatorWarp, BitOperationsOnLaneMasks) {
  const std::vector<unsigned> words = {0u, 1u, 0x80000000u, 0x00f0u, 0xffffffffu, 0x40000006u};
  const std::vector<int> want = {0, 32, 0,  1, 31, 1,  32, 0, 1,  5, 24, 4,  1, 0, 32,  2, 1, 3};
  DeviceBuffer<unsigned> in(words.size());
  in.upload(words);
  DeviceBuffer<int> out(want.size());
  KILN_LAUNCH(bit_operations, dim3(1), dim3(32), 0, nullptr, out.data(), in.data(), static_cast<int>(words.size()));
  EXPECT_EQ(out.download(), want);
}

// __activemask inside a branch: the lanes that took it.
__global__ void active_in_branch(unsigned* out, int limit) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  unsigned mask = 0;
  if (lane < limit) {
    mask = __activemask();
    __syncwarp(mask);
    mask = __shfl_sync(mask, mask, 0);  // legal only with exactly the active lanes
  } else {
    mask = __activemask();
  }
  out[threadIdx.x] = mask;
}

TEST(CudaEmulatorWarp, ActiveMaskIsTheLanesOfTheBranch) {
  DeviceBuffer<unsigned> out(32);
  KILN_LAUNCH(active_in_branch, dim3(1), dim3(32), 0, nullptr, out.data(), 12);
  const std::vector<unsigned> got = out.download();
  for (int lane = 0; lane < 32; ++lane) EXPECT_EQ(got[lane], lane < 12 ? 0x00000fffu : 0xfffff000u) << lane;
}

// __syncwarp orders shared-memory traffic within a warp: without it the neighbour's slot may
// be unwritten.
__global__ void warp_exchange(float* out, bool with_sync) {
  KILN_DYNAMIC_SHARED(float, slots);
  const unsigned t = threadIdx.x;
  slots[t] = static_cast<float>(t);
  if (with_sync) __syncwarp();
  out[t] = slots[t ^ 1u];
}

TEST(CudaEmulatorWarp, SyncwarpIsARealBarrierForTheWarp) {
  DeviceBuffer<float> out(32);
  KILN_LAUNCH(warp_exchange, dim3(1), dim3(32), 32 * sizeof(float), nullptr, out.data(), true);
  std::vector<float> got = out.download();
  for (unsigned t = 0; t < 32; ++t) EXPECT_EQ(got[t], static_cast<float>(t ^ 1u));
  KILN_LAUNCH(warp_exchange, dim3(1), dim3(32), 32 * sizeof(float), nullptr, out.data(), false);
  got = out.download();
  int wrong = 0;
  for (unsigned t = 0; t < 32; ++t) wrong += !(got[t] == static_cast<float>(t ^ 1u));
  EXPECT_GT(wrong, 0);
}

std::string launch_error(const std::function<void()>& launch) {
  try {
    launch();
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "no error";
}

__global__ void misuse(int* out, int kind) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  int value = lane;
  if (kind == 0) value = __shfl_sync(0x0000ffffu, value, 0);          // lanes 16..31 are not in the mask
  if (kind == 1) value = __shfl_sync(lane < 16 ? 0x0000ffffu : 0xffffffffu, value, 0);  // masks disagree
  if (kind == 2) {
    if (lane == 7) return;                                            // a lane of the mask exits
    value = __shfl_sync(0xffffffffu, value, 0);
  }
  if (kind == 3 && lane < 16) value = __shfl_sync(0x0000ffffu, value, 20);  // reads outside the mask
  if (kind == 4) value = __shfl_sync(0xffffffffu, value, 0, 12);      // width not a power of two
  if (kind == 5) value = static_cast<int>(lane < 16 ? __ballot_sync(0xffffffffu, 1) : __shfl_sync(0xffffffffu, value, 0));
  if (kind == 6) value = __shfl_sync(0xffffffffu, value, 0);          // a partial warp has no lanes 20..31
  out[threadIdx.x] = value;
}

TEST(CudaEmulatorWarp, MaskMisuseIsAnErrorNamingTheKernelAndLane) {
  DeviceBuffer<int> out(32);
  const auto run = [&](int kind, int threads = 32) {
    return launch_error([&] {
      KILN_LAUNCH(misuse, dim3(1), dim3(static_cast<unsigned>(threads)), 0, nullptr, out.data(), kind);
    });
  };
  const std::string not_in_mask = run(0);
  EXPECT_NE(not_in_mask.find("kernel misuse"), std::string::npos) << not_in_mask;
  EXPECT_NE(not_in_mask.find("with mask 0x0000ffff, which does not include it"), std::string::npos) << not_in_mask;
  EXPECT_NE(run(1).find("the lanes of a mask must all make the same call with the same mask"), std::string::npos) << run(1);
  EXPECT_NE(run(2).find("waits for lane 7, which has already returned"), std::string::npos) << run(2);
  EXPECT_NE(run(3).find("reads lane 20, which is not in the mask"), std::string::npos) << run(3);
  EXPECT_NE(run(4).find("width 12"), std::string::npos) << run(4);
  EXPECT_NE(run(5).find("same call"), std::string::npos) << run(5);
  EXPECT_NE(run(6, 20).find("this warp has only 20 threads"), std::string::npos) << run(6, 20);
}

}  // namespace
}  // namespace kiln::cuda_test
