#pragma once
// The emulated CUDA runtime API: the subset kiln's kernels and backend call, over host memory.
// Names and signatures are the CUDA runtime's, so backend code compiles against either.
//
// "Device" memory is host memory from cudaMalloc, tracked by address range, so the emulator
// can tell a device pointer from a host one: cudaMemcpy checks that each side of a copy is
// what its kind says (and that the bytes fit inside the allocation), cudaFree refuses what
// cudaMalloc did not return, and a launch refuses a pointer argument outside every live
// allocation (is_device_pointer). Work on streams runs synchronously at the call; events
// record host time.
#include <cstddef>
#include <string>

namespace kiln::emu {

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

struct Stream;
struct Event;
using cudaStream_t = Stream*;
using cudaEvent_t = Event*;
inline constexpr unsigned cudaStreamNonBlocking = 1;
inline constexpr unsigned cudaEventDefault = 0;
inline constexpr unsigned cudaEventDisableTiming = 2;

// Shared memory limits of sm_90: 48 KiB of dynamic shared memory per block unless the kernel
// opts in (cudaFuncSetAttribute) to at most 227 KiB.
inline constexpr std::size_t kDefaultDynamicSharedBytes = 48 * 1024;
inline constexpr std::size_t kMaxDynamicSharedBytes = 227 * 1024;

cudaError_t cudaMalloc(void** pointer, std::size_t bytes);
cudaError_t cudaFree(void* pointer);
cudaError_t cudaMallocHost(void** pointer, std::size_t bytes);
cudaError_t cudaFreeHost(void* pointer);
cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* destination, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* destination, int value, std::size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceCount(int* count);
// Free and total bytes of the emulated device: its capacity (set_device_capacity; 16 GiB by
// default) minus what live cudaMalloc allocations hold. cudaMalloc beyond it fails with
// cudaErrorMemoryAllocation, as on a full GPU, so out-of-memory handling can be tested.
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value);
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attribute, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attribute, value);
}

cudaError_t cudaGetLastError();   // returns and clears the last error
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);

// ---- emulator-only ---------------------------------------------------------------------------
// Whether `pointer` lies inside (or one past the end of) a live cudaMalloc allocation.
bool is_device_pointer(const void* pointer);
// Whether it lies in device memory or in pinned host memory (cudaMallocHost), which kernels
// may read on the GPU too.
bool is_kernel_accessible(const void* pointer);
std::size_t live_device_allocations();
// The emulated device's memory size (cudaMemGetInfo's total); returns the previous one.
std::size_t set_device_capacity(std::size_t bytes);
// What the last failed call found, in words (cudaGetErrorString gives only the code's text).
std::string last_error_detail();
// Records a failure as the CUDA runtime would (the sticky last error) and returns it.
cudaError_t record_error(cudaError_t error, std::string detail);
// The dynamic shared memory a kernel may use (48 KiB unless raised by cudaFuncSetAttribute).
std::size_t dynamic_shared_limit(const void* kernel);
bool is_live_stream(cudaStream_t stream);

}  // namespace kiln::emu
