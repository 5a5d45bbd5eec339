// Emulated device memory, streams and events, and atomics under contention.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#include "tests/cuda/device_buffer.hpp"

namespace kiln::cuda_test {
namespace {

// Every thread of every block hits the same few words.
__global__ void contended_atomics(int* i32, unsigned* u32, unsigned long long* u64, float* f32, double* f64,
                                  int* maximum, int* minimum, unsigned* cas_counter, int* exchanged) {
  const int id = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(i32, 1);
  atomicAdd(u32, 2u);
  atomicAdd(u64, 1ull << 33);
  atomicAdd(f32, 0.5f);
  atomicAdd(f64, 0.25);
  atomicMax(maximum, (id * 7919) % 1000);
  atomicMin(minimum, 500 - (id * 7919) % 1000);
  unsigned seen = *cas_counter, assumed = 0;
  do {  // the CAS-loop idiom of float max and friends
    assumed = seen;
    seen = atomicCAS(cas_counter, assumed, assumed + 3u);
  } while (seen != assumed);
  atomicExch(exchanged, id);
}

TEST(CudaEmulatorMemory, AtomicsUnderContentionLoseNothing) {
  constexpr unsigned blocks = 4, threads = 256, total = blocks * threads;
  DeviceBuffer<int> i32(std::vector<int>{0}), maximum(std::vector<int>{-1}), minimum(std::vector<int>{1000}),
      exchanged(std::vector<int>{-1});
  DeviceBuffer<unsigned> u32(std::vector<unsigned>{0}), cas(std::vector<unsigned>{0});
  DeviceBuffer<unsigned long long> u64(std::vector<unsigned long long>{0});
  DeviceBuffer<float> f32(std::vector<float>{0});
  DeviceBuffer<double> f64(std::vector<double>{0});
  KILN_LAUNCH(contended_atomics, dim3(blocks), dim3(threads), 0, nullptr, i32.data(), u32.data(), u64.data(), f32.data(),
              f64.data(), maximum.data(), minimum.data(), cas.data(), exchanged.data());
  EXPECT_EQ(i32.download()[0], static_cast<int>(total));
  EXPECT_EQ(u32.download()[0], 2 * total);
  EXPECT_EQ(u64.download()[0], static_cast<unsigned long long>(total) << 33);
  EXPECT_EQ(f32.download()[0], 0.5f * total);  // exact: every partial sum is a multiple of 0.5 below 2^24
  EXPECT_EQ(f64.download()[0], 0.25 * total);
  int want_max = -1, want_min = 1000;
  for (int id = 0; id < static_cast<int>(total); ++id) {
    want_max = std::max(want_max, (id * 7919) % 1000);
    want_min = std::min(want_min, 500 - (id * 7919) % 1000);
  }
  EXPECT_EQ(maximum.download()[0], want_max);
  EXPECT_EQ(minimum.download()[0], want_min);
  EXPECT_EQ(cas.download()[0], 3 * total);
  const int last = exchanged.download()[0];
  EXPECT_GE(last, 0);
  EXPECT_LT(last, static_cast<int>(total));
}

std::string detail_of(cudaError_t error) { return error == cudaSuccess ? "success" : emu::last_error_detail(); }

TEST(CudaEmulatorMemory, CopiesCheckThatEachSideIsWhatTheKindSays) {
  DeviceBuffer<float> device(16);
  std::vector<float> host(16, 1.0f), other(16, 0.0f);
  EXPECT_TRUE(emu::is_device_pointer(device.data()));
  EXPECT_TRUE(emu::is_device_pointer(device.data() + 16));  // one past the end
  EXPECT_FALSE(emu::is_device_pointer(host.data()));
  EXPECT_EQ(cudaMemcpy(device.data(), host.data(), 64, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(other.data(), device.data(), 64, cudaMemcpyDefault), cudaSuccess);
  EXPECT_EQ(other, host);

  // Host pointer where device memory is due, and the reverse.
  EXPECT_EQ(cudaMemcpy(other.data(), host.data(), 64, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_NE(emu::last_error_detail().find("destination"), std::string::npos);
  EXPECT_NE(emu::last_error_detail().find("should be device memory"), std::string::npos);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // reading clears it
  EXPECT_EQ(cudaMemcpy(other.data(), host.data(), 64, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_NE(detail_of(cudaMemcpy(device.data(), host.data(), 64, cudaMemcpyDeviceToHost)).find("is a cudaMalloc allocation"),
            std::string::npos);
  // Past the end of the allocation.
  EXPECT_NE(detail_of(cudaMemcpy(device.data() + 8, host.data(), 64, cudaMemcpyHostToDevice)).find("runs past the end"),
            std::string::npos);
  EXPECT_EQ(cudaMemset(device.data() + 4, 0, 64), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemset(host.data(), 0, 4), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(other.data(), host.data(), 64, static_cast<cudaMemcpyKind>(7)), cudaErrorInvalidMemcpyDirection);
  cudaGetLastError();
}

TEST(CudaEmulatorMemory, FreedAndForeignPointersAreRefused) {
  const std::size_t before = emu::live_device_allocations();
  void* pointer = nullptr;
  ASSERT_EQ(cudaMalloc(&pointer, 100), cudaSuccess);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(pointer) % 256, 0u);
  EXPECT_EQ(emu::live_device_allocations(), before + 1);
  std::vector<char> host(100);
  EXPECT_EQ(cudaFree(host.data()), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(static_cast<char*>(pointer) + 4), cudaErrorInvalidValue);
  ASSERT_EQ(cudaFree(pointer), cudaSuccess);
  EXPECT_EQ(emu::live_device_allocations(), before);
  EXPECT_FALSE(emu::is_device_pointer(pointer));
  EXPECT_EQ(cudaFree(pointer), cudaErrorInvalidValue);
  EXPECT_NE(emu::last_error_detail().find("freed already"), std::string::npos);
  EXPECT_EQ(cudaMemcpy(pointer, host.data(), 10, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(nullptr), cudaSuccess);
  void* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, 64), cudaSuccess);
  EXPECT_FALSE(emu::is_device_pointer(pinned));
  EXPECT_EQ(cudaFree(pinned), cudaErrorInvalidValue);  // pinned memory goes back through cudaFreeHost
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
  cudaGetLastError();
}

TEST(CudaEmulatorMemory, StreamsAndEventsAreCheckedHandles) {
  cudaStream_t compute = nullptr, communication = nullptr;
  ASSERT_EQ(cudaStreamCreate(&compute), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&communication, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t start = nullptr, done = nullptr;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&done, cudaEventDefault), cudaSuccess);
  DeviceBuffer<int> device(4);
  std::vector<int> host{1, 2, 3, 4}, back(4);
  EXPECT_EQ(cudaEventRecord(start, compute), cudaSuccess);
  EXPECT_EQ(cudaMemcpyAsync(device.data(), host.data(), 16, cudaMemcpyHostToDevice, compute), cudaSuccess);
  EXPECT_EQ(cudaEventRecord(done, compute), cudaSuccess);
  EXPECT_EQ(cudaStreamWaitEvent(communication, done), cudaSuccess);
  EXPECT_EQ(cudaMemcpyAsync(back.data(), device.data(), 16, cudaMemcpyDeviceToHost, communication), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(communication), cudaSuccess);
  EXPECT_EQ(back, host);
  float milliseconds = -1;
  EXPECT_EQ(cudaEventElapsedTime(&milliseconds, start, done), cudaSuccess);
  EXPECT_GE(milliseconds, 0.0f);
  EXPECT_EQ(cudaMemsetAsync(device.data(), 0, 16, communication), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(start), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(done), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(compute), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(communication), cudaSuccess);
  // Destroyed handles are refused, not used.
  EXPECT_EQ(cudaMemcpyAsync(device.data(), host.data(), 16, cudaMemcpyHostToDevice, compute), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventRecord(start, nullptr), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaStreamDestroy(nullptr), cudaErrorInvalidResourceHandle);
  EXPECT_STREQ(cudaGetErrorName(cudaErrorInvalidResourceHandle), "cudaErrorInvalidResourceHandle");
  EXPECT_STREQ(cudaGetErrorString(cudaErrorInvalidValue), "invalid argument");
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaGetLastError();
}

}  // namespace
}  // namespace kiln::cuda_test
