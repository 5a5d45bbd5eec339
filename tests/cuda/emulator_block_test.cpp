// The emulated execution model inside a block: barriers, shared memory, schedule, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#include "tests/cuda/device_buffer.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cuda_test {
namespace {

// Each thread publishes a value in shared memory and reads its neighbour's (offset away).
__global__ void neighbour_exchange(float* out, int offset, bool with_barrier) {
  KILN_DYNAMIC_SHARED(float, tile);
  const unsigned n = blockDim.x, t = threadIdx.x;
  tile[t] = static_cast<float>(blockIdx.x * 1000 + t);
  if (with_barrier) __syncthreads();
  out[blockIdx.x * n + t] = tile[(t + n + static_cast<unsigned>(offset)) % n];
}

std::vector<float> expected_exchange(unsigned blocks, unsigned threads, int offset) {
  std::vector<float> expected(blocks * threads);
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < threads; ++t)
      expected[b * threads + t] = static_cast<float>(b * 1000 + (t + threads + static_cast<unsigned>(offset)) % threads);
  return expected;
}

std::size_t mismatches(const std::vector<float>& got, const std::vector<float>& want) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < got.size(); ++i) count += !(got[i] == want[i]);
  return count;
}

TEST(CudaEmulatorBlock, BarrierOrdersSharedWritesBeforeReads) {
  constexpr unsigned blocks = 3, threads = 256;
  DeviceBuffer<float> out(blocks * threads);
  for (int offset : {1, -1, 37}) {
    KILN_LAUNCH(neighbour_exchange, dim3(blocks), dim3(threads), threads * sizeof(float), nullptr, out.data(), offset, true);
    EXPECT_EQ(mismatches(out.download(), expected_exchange(blocks, threads, offset)), 0u) << "offset " << offset;
  }
}

TEST(CudaEmulatorBlock, MissingBarrierGivesWrongResultsInEitherDirection) {
  constexpr unsigned blocks = 3, threads = 256;
  DeviceBuffer<float> out(blocks * threads);
  for (int offset : {1, -1}) {  // reading a later thread and an earlier one: neither works by luck
    KILN_LAUNCH(neighbour_exchange, dim3(blocks), dim3(threads), threads * sizeof(float), nullptr, out.data(), offset, false);
    const std::vector<float> got = out.download();
    const std::size_t wrong = mismatches(got, expected_exchange(blocks, threads, offset));
    EXPECT_GT(wrong, got.size() / 4) << "offset " << offset;
    // What the racing reads saw is the poison of unwritten dynamic shared memory.
    EXPECT_GT(std::count_if(got.begin(), got.end(), [](float v) { return std::isnan(v); }), 0);
  }
}

// The same race on static __shared__, which is not poisoned: stale values of the previous
// block (or zeros) come out instead.
__global__ void static_shared_exchange(float* out, bool with_barrier) {
  __shared__ float tile[128];
  const unsigned t = threadIdx.x;
  tile[t] = static_cast<float>(blockIdx.x * 1000 + t);
  if (with_barrier) __syncthreads();
  out[blockIdx.x * 128 + t] = tile[(t + 1) % 128];
  if (with_barrier) __syncthreads();  // nobody overwrites tile before everyone has read it
}

TEST(CudaEmulatorBlock, MissingBarrierOnStaticSharedMemoryIsCaughtToo) {
  constexpr unsigned blocks = 4;
  DeviceBuffer<float> out(blocks * 128);
  KILN_LAUNCH(static_shared_exchange, dim3(blocks), dim3(128), 0, nullptr, out.data(), true);
  EXPECT_EQ(mismatches(out.download(), expected_exchange(blocks, 128, 1)), 0u);
  KILN_LAUNCH(static_shared_exchange, dim3(blocks), dim3(128), 0, nullptr, out.data(), false);
  EXPECT_GT(mismatches(out.download(), expected_exchange(blocks, 128, 1)), 128u);
}

// Reads dynamic shared memory before anything writes it, then writes its block's id, reads it
// back after a barrier, and counts threads through __syncthreads_count/and/or.
__global__ void shared_privacy(std::uint32_t* first_read, std::uint32_t* after_write, int* counts) {
  KILN_DYNAMIC_SHARED(std::uint32_t, words);
  const unsigned t = threadIdx.x, slot = blockIdx.x * blockDim.x + t;
  first_read[slot] = words[t];
  __syncthreads();
  words[t] = blockIdx.x;
  __syncthreads();
  after_write[slot] = words[(t + 5) % blockDim.x];
  const int even = __syncthreads_count(t % 2 == 0);
  const int all_small = __syncthreads_and(t < blockDim.x);
  const int any_last = __syncthreads_or(t == blockDim.x - 1);
  const int none = __syncthreads_or(0);
  if (t == 0) {
    counts[blockIdx.x * 4 + 0] = even;
    counts[blockIdx.x * 4 + 1] = all_small;
    counts[blockIdx.x * 4 + 2] = any_last;
    counts[blockIdx.x * 4 + 3] = none;
  }
}

TEST(CudaEmulatorBlock, DynamicSharedMemoryIsPrivateToABlockAndPoisonedAtItsStart) {
  constexpr unsigned blocks = 5, threads = 96;
  DeviceBuffer<std::uint32_t> first_read(blocks * threads), after_write(blocks * threads);
  DeviceBuffer<int> counts(blocks * 4);
  KILN_LAUNCH(shared_privacy, dim3(blocks), dim3(threads), threads * 4, nullptr, first_read.data(), after_write.data(),
              counts.data());
  for (std::uint32_t word : first_read.download()) EXPECT_EQ(word, 0xFFFFFFFFu);  // never the previous block's id
  const std::vector<std::uint32_t> after = after_write.download();
  for (unsigned i = 0; i < after.size(); ++i) EXPECT_EQ(after[i], i / threads) << "slot " << i;
  const std::vector<int> got = counts.download();
  for (unsigned b = 0; b < blocks; ++b) {
    EXPECT_EQ(got[b * 4 + 0], 48);
    EXPECT_EQ(got[b * 4 + 1], 1);
    EXPECT_EQ(got[b * 4 + 2], 1);
    EXPECT_EQ(got[b * 4 + 3], 0);
  }
}

// Each block takes a ticket: the order in which blocks ran.
__global__ void block_tickets(unsigned* next_ticket, unsigned* order) {
  if (threadIdx.x == 0) order[atomicAdd(next_ticket, 1u)] = blockIdx.x + gridDim.x * blockIdx.y;
}

std::vector<unsigned> run_block_order(std::uint64_t seed) {
  const std::uint64_t saved = emu::schedule_seed();
  emu::set_schedule_seed(seed);
  DeviceBuffer<unsigned> ticket(std::vector<unsigned>{0});
  DeviceBuffer<unsigned> order(64);
  KILN_LAUNCH(block_tickets, dim3(16, 4), dim3(32), 0, nullptr, ticket.data(), order.data());
  emu::set_schedule_seed(saved);
  return order.download();
}

TEST(CudaEmulatorBlock, BlocksRunInAShuffledButSeededOrder) {
  const std::vector<unsigned> order = run_block_order(7);
  std::vector<unsigned> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<unsigned> identity(64);
  std::iota(identity.begin(), identity.end(), 0u);
  EXPECT_EQ(sorted, identity);  // every block ran once
  EXPECT_NE(order, identity);   // but not in index order
  std::vector<unsigned> reversed(identity.rbegin(), identity.rend());
  EXPECT_NE(order, reversed);
  EXPECT_NE(run_block_order(8), order);  // another seed, another order ...
}

std::string launch_error(const std::function<void()>& launch) {
  try {
    launch();
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "no error";
}

__global__ void barrier_in_branch(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void barriers_at_two_sites(int* out) {
  if (threadIdx.x % 2)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1;
}

// Two warps each take kRounds warp-synchronous steps, counting them in shared memory, and at
// the end each notes how far the other had got (no barrier in between: a race by design).
constexpr int kRounds = 20;
__global__ void drifting_warps(int* seen) {
  __shared__ int progress[2];
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) progress[warp] = 0;
  __syncthreads();
  for (int round = 0; round < kRounds; ++round) {
    __syncwarp();
    if (lane == 0) progress[warp] = round + 1;
  }
  if (lane == 0) seen[2 * blockIdx.x + warp] = progress[1 - warp];
  __syncthreads();
}

// Warps drift by whole collectives, and in some blocks one warp lags until the other can go no
// further: there it sees the other finished while the other saw it not started. (With each warp
// sitting out half the rounds only, a gap of all 20 rounds would come once in 2^20 blocks.)
TEST(CudaEmulatorBlock, AWarpCanFallAsFarBehindAsTheBarriersAllow) {
  constexpr unsigned blocks = 64;
  DeviceBuffer<int> seen(2 * blocks);
  KILN_LAUNCH(drifting_warps, dim3(blocks), dim3(64), 0, nullptr, seen.data());
  const std::vector<int> got = seen.download();
  int lagged = 0, in_step = 0;
  for (unsigned b = 0; b < blocks; ++b) {
    const int first = got[2 * b], second = got[2 * b + 1];
    lagged += (first == 0 && second == kRounds) || (first == kRounds && second == 0);
    in_step += (first > 0 && first < kRounds) || (second > 0 && second < kRounds);
  }
  EXPECT_GT(lagged, 0);
  EXPECT_GT(in_step, 0);  // elsewhere the warps interleave: one ends while the other is midway
}

TEST(CudaEmulatorBlock, DivergentBarrierIsAnErrorNamingTheKernelNotAHang) {
  DeviceBuffer<int> out(64);
  const std::string skipped = launch_error([&] { KILN_LAUNCH(barrier_in_branch, dim3(2), dim3(64), 0, nullptr, out.data()); });
  EXPECT_NE(skipped.find("kernel barrier_in_branch"), std::string::npos) << skipped;
  EXPECT_NE(skipped.find("divergent __syncthreads"), std::string::npos) << skipped;
  EXPECT_NE(skipped.find("returned without reaching it"), std::string::npos) << skipped;
  EXPECT_NE(skipped.find("emulator_block_test.cpp"), std::string::npos) << skipped;

  const std::string two_sites = launch_error([&] { KILN_LAUNCH(barriers_at_two_sites, dim3(1), dim3(64), 0, nullptr, out.data()); });
  EXPECT_NE(two_sites.find("kernel barriers_at_two_sites"), std::string::npos) << two_sites;
  EXPECT_NE(two_sites.find("divergent __syncthreads"), std::string::npos) << two_sites;
}

__global__ void warp_sync_against_barrier(int* out) {
  if (threadIdx.x < 16)
    __syncthreads();
  else
    __syncwarp();
  out[threadIdx.x] = 1;
}

TEST(CudaEmulatorBlock, DeadlockIsAnErrorNamingWhereThreadsWait) {
  DeviceBuffer<int> out(32);
  const std::string message =
      launch_error([&] { KILN_LAUNCH(warp_sync_against_barrier, dim3(1), dim3(32), 0, nullptr, out.data()); });
  EXPECT_NE(message.find("kernel warp_sync_against_barrier"), std::string::npos) << message;
  EXPECT_NE(message.find("deadlock"), std::string::npos) << message;
  EXPECT_NE(message.find("__syncwarp"), std::string::npos) << message;
}

__global__ void write_thread_count(int* out) {
  atomicAdd(out, 1);
}

TEST(CudaEmulatorBlock, LaunchLimitsOfSm90AreErrorsNamingTheKernel) {
  DeviceBuffer<int> out(std::vector<int>{0});
  const auto launch = [&](dim3 grid, dim3 block, std::size_t shared) {
    return launch_error([&] { KILN_LAUNCH(write_thread_count, grid, block, shared, nullptr, out.data()); });
  };
  const std::string too_many = launch(dim3(1), dim3(1025), 0);
  EXPECT_NE(too_many.find("CUDA kernel write_thread_count: launch failed: cudaErrorInvalidConfiguration"), std::string::npos) << too_many;
  EXPECT_NE(too_many.find("1025 threads"), std::string::npos) << too_many;
  EXPECT_NE(launch(dim3(1), dim3(32, 32, 2), 0).find("2048 threads"), std::string::npos);
  EXPECT_NE(launch(dim3(1), dim3(1, 1, 65), 0).find("z up to 64"), std::string::npos);
  EXPECT_NE(launch(dim3(1, 65536), dim3(32), 0).find("grid (1,65536,1)"), std::string::npos);
  EXPECT_NE(launch(dim3(0), dim3(32), 0).find("grid (0,1,1)"), std::string::npos);
  const std::string shared = launch(dim3(1), dim3(32), 48 * 1024 + 1);
  EXPECT_NE(shared.find("cudaErrorInvalidValue"), std::string::npos) << shared;
  EXPECT_NE(shared.find("cudaFuncSetAttribute"), std::string::npos) << shared;
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // the launch helper consumed the error

  // Opting in raises the limit to what was asked, up to 227 KiB.
  ASSERT_EQ(cudaFuncSetAttribute(write_thread_count, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 * 1024), cudaSuccess);
  EXPECT_EQ(launch(dim3(1), dim3(1024), 100 * 1024), "no error");
  EXPECT_EQ(out.download()[0], 1024);
  EXPECT_NE(launch(dim3(1), dim3(32), 100 * 1024 + 1).find("102401 bytes"), std::string::npos);
  EXPECT_EQ(cudaFuncSetAttribute(write_thread_count, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024 + 1),
            cudaErrorInvalidValue);
  ASSERT_EQ(cudaFuncSetAttribute(write_thread_count, cudaFuncAttributeMaxDynamicSharedMemorySize, 48 * 1024), cudaSuccess);
}

TEST(CudaEmulatorBlock, HostPointerArgumentIsCaughtAtLaunch) {
  std::vector<int> host(4);
  const std::string message = launch_error([&] { KILN_LAUNCH(write_thread_count, dim3(1), dim3(4), 0, nullptr, host.data()); });
  EXPECT_NE(message.find("kernel write_thread_count"), std::string::npos) << message;
  EXPECT_NE(message.find("argument 0 is not device memory"), std::string::npos) << message;
  void* freed = nullptr;
  ASSERT_EQ(cudaMalloc(&freed, 64), cudaSuccess);
  ASSERT_EQ(cudaFree(freed), cudaSuccess);
  EXPECT_NE(launch_error([&] { KILN_LAUNCH(write_thread_count, dim3(1), dim3(4), 0, nullptr, static_cast<int*>(freed)); })
                .find("argument 0 is not device memory"),
            std::string::npos);
  void* pinned = nullptr;  // pinned host memory is reachable from kernels, as on the GPU
  ASSERT_EQ(cudaMallocHost(&pinned, sizeof(int)), cudaSuccess);
  *static_cast<int*>(pinned) = 0;
  EXPECT_EQ(launch_error([&] { KILN_LAUNCH(write_thread_count, dim3(2), dim3(4), 0, nullptr, static_cast<int*>(pinned)); }),
            "no error");
  EXPECT_EQ(*static_cast<int*>(pinned), 8);
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
}

__global__ void indices_3d(unsigned* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  out[block * per_block + thread] = block * 10000 + thread;
}

TEST(CudaEmulatorBlock, EveryThreadOfAThreeDimensionalGridRunsOnceWithItsIndices) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  DeviceBuffer<unsigned> out(12 * 24);
  out.fill_bytes(0xFF);
  KILN_LAUNCH(indices_3d, grid, block, 0, nullptr, out.data());
  const std::vector<unsigned> got = out.download();
  for (unsigned i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], i / 24 * 10000 + i % 24);
}

}  // namespace
}  // namespace kiln::cuda_test
