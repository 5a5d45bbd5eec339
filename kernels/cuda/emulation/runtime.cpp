#include "kernels/cuda/emulation/runtime.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <utility>

namespace kiln::emu {

struct Stream {};
struct Event {
  std::chrono::steady_clock::time_point recorded{};
  bool has_recorded = false;
};

namespace {

enum class Memory { Device, PinnedHost };

struct Allocation {
  std::size_t bytes = 0;
  Memory memory = Memory::Device;
};

// cudaMalloc's alignment guarantee (256 bytes), which vectorised kernels rely on.
constexpr std::size_t kAllocationAlignment = 256;

struct Registry {
  std::mutex mutex;
  std::map<std::uintptr_t, Allocation> allocations;  // by start address
  std::set<Stream*> streams;
  std::set<Event*> events;
  std::map<const void*, std::size_t> shared_limits;
  std::size_t capacity = std::size_t{16} << 30;  // bytes the emulated device holds
  std::size_t device_bytes = 0;                   // held by live cudaMalloc allocations
};

Registry& registry() {
  static Registry instance;
  return instance;
}

thread_local cudaError_t last_error = cudaSuccess;
thread_local std::string last_detail;

// The allocation holding [pointer, pointer + bytes), or null. The end may touch the
// allocation's end (a pointer one past it is valid for a zero-byte access).
const std::pair<const std::uintptr_t, Allocation>* find_allocation(const void* pointer, std::size_t bytes = 0) {
  auto& allocations = registry().allocations;
  const auto address = reinterpret_cast<std::uintptr_t>(pointer);
  auto next = allocations.upper_bound(address);
  if (next == allocations.begin()) return nullptr;
  const auto& found = *std::prev(next);
  if (address + bytes > found.first + found.second.bytes) return nullptr;
  return &found;
}

bool is_memory(const void* pointer, std::size_t bytes, Memory memory) {
  std::lock_guard lock(registry().mutex);
  const auto* found = find_allocation(pointer, bytes);
  return found && found->second.memory == memory;
}

cudaError_t allocate(void** pointer, std::size_t bytes, Memory memory, const char* call) {
  if (!pointer) return record_error(cudaErrorInvalidValue, fmt::format("{}: the pointer argument is null", call));
  *pointer = nullptr;
  if (bytes == 0) return cudaSuccess;  // as CUDA: a null pointer, no error
  const std::size_t rounded = (bytes + kAllocationAlignment - 1) / kAllocationAlignment * kAllocationAlignment;
  if (memory == Memory::Device) {
    std::lock_guard lock(registry().mutex);
    const Registry& r = registry();
    if (rounded > r.capacity - std::min(r.device_bytes, r.capacity))
      return record_error(cudaErrorMemoryAllocation,
                          fmt::format("{}: {} bytes asked, {} of the emulated device's {} free", call, bytes,
                                      r.capacity - std::min(r.device_bytes, r.capacity), r.capacity));
  }
  void* memory_block = std::aligned_alloc(kAllocationAlignment, rounded);
  if (!memory_block)
    return record_error(cudaErrorMemoryAllocation, fmt::format("{}: cannot allocate {} bytes", call, bytes));
  std::lock_guard lock(registry().mutex);
  registry().allocations[reinterpret_cast<std::uintptr_t>(memory_block)] = {bytes, memory};
  if (memory == Memory::Device) registry().device_bytes += rounded;
  *pointer = memory_block;
  return cudaSuccess;
}

cudaError_t release(void* pointer, Memory memory, const char* call) {
  if (!pointer) return cudaSuccess;
  std::lock_guard lock(registry().mutex);
  auto& allocations = registry().allocations;
  const auto found = allocations.find(reinterpret_cast<std::uintptr_t>(pointer));
  if (found == allocations.end() || found->second.memory != memory)
    return record_error(cudaErrorInvalidValue,
                        fmt::format("{}({}): not the start of a live {} allocation (a host pointer, an offset "
                                    "into one, or freed already)",
                                    call, pointer, memory == Memory::Device ? "cudaMalloc" : "cudaMallocHost"));
  if (memory == Memory::Device)
    registry().device_bytes -= (found->second.bytes + kAllocationAlignment - 1) / kAllocationAlignment * kAllocationAlignment;
  allocations.erase(found);
  std::free(pointer);
  return cudaSuccess;
}

const char* side_name(bool device) { return device ? "device memory" : "host memory"; }

// Checks one side of a copy against what its kind says it is.
cudaError_t check_side(const void* pointer, std::size_t bytes, bool want_device, const char* role, const char* call) {
  if (!pointer) return record_error(cudaErrorInvalidValue, fmt::format("{}: the {} is null", call, role));
  if (want_device) {
    if (is_memory(pointer, bytes, Memory::Device)) return cudaSuccess;
    const bool starts_inside = is_memory(pointer, 0, Memory::Device);
    return record_error(cudaErrorInvalidValue,
                        starts_inside ? fmt::format("{}: the {} {} plus {} bytes runs past the end of its cudaMalloc "
                                                    "allocation", call, role, pointer, bytes)
                                      : fmt::format("{}: the {} {} should be device memory but is not a live cudaMalloc "
                                                    "allocation (host memory, or freed)", call, role, pointer));
  }
  if (is_device_pointer(pointer))
    return record_error(cudaErrorInvalidValue,
                        fmt::format("{}: the {} {} should be {} but is a cudaMalloc allocation", call, role, pointer,
                                    side_name(false)));
  return cudaSuccess;
}

cudaError_t check_stream(cudaStream_t stream, const char* call) {
  if (is_live_stream(stream)) return cudaSuccess;
  return record_error(cudaErrorInvalidResourceHandle, fmt::format("{}: stream {} was never created or is destroyed", call,
                                                                  static_cast<const void*>(stream)));
}

cudaError_t check_event(cudaEvent_t event, const char* call) {
  std::lock_guard lock(registry().mutex);
  if (registry().events.count(event)) return cudaSuccess;
  return record_error(cudaErrorInvalidResourceHandle, fmt::format("{}: event {} was never created or is destroyed", call,
                                                                  static_cast<const void*>(event)));
}

}  // namespace

cudaError_t record_error(cudaError_t error, std::string detail) {
  last_error = error;
  last_detail = std::move(detail);
  return error;
}

std::string last_error_detail() { return last_detail; }

bool is_device_pointer(const void* pointer) { return is_memory(pointer, 0, Memory::Device); }

bool is_kernel_accessible(const void* pointer) {
  std::lock_guard lock(registry().mutex);
  return find_allocation(pointer) != nullptr;
}

std::size_t live_device_allocations() {
  std::lock_guard lock(registry().mutex);
  std::size_t count = 0;
  for (const auto& [start, allocation] : registry().allocations) count += allocation.memory == Memory::Device;
  return count;
}

std::size_t set_device_capacity(std::size_t bytes) {
  std::lock_guard lock(registry().mutex);
  const std::size_t previous = registry().capacity;
  registry().capacity = bytes;
  return previous;
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  if (!free_bytes || !total_bytes)
    return record_error(cudaErrorInvalidValue, "cudaMemGetInfo: a pointer argument is null");
  std::lock_guard lock(registry().mutex);
  const Registry& r = registry();
  *total_bytes = r.capacity;
  *free_bytes = r.capacity - std::min(r.device_bytes, r.capacity);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** pointer, std::size_t bytes) { return allocate(pointer, bytes, Memory::Device, "cudaMalloc"); }
cudaError_t cudaFree(void* pointer) { return release(pointer, Memory::Device, "cudaFree"); }
cudaError_t cudaMallocHost(void** pointer, std::size_t bytes) {
  return allocate(pointer, bytes, Memory::PinnedHost, "cudaMallocHost");
}
cudaError_t cudaFreeHost(void* pointer) { return release(pointer, Memory::PinnedHost, "cudaFreeHost"); }

cudaError_t cudaMemcpy(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  bool device_destination = false, device_source = false;
  switch (kind) {
    case cudaMemcpyHostToHost: break;
    case cudaMemcpyHostToDevice: device_destination = true; break;
    case cudaMemcpyDeviceToHost: device_source = true; break;
    case cudaMemcpyDeviceToDevice: device_destination = device_source = true; break;
    case cudaMemcpyDefault:
      device_destination = is_device_pointer(destination);
      device_source = is_device_pointer(source);
      break;
    default:
      return record_error(cudaErrorInvalidMemcpyDirection, fmt::format("cudaMemcpy: kind {} is not a cudaMemcpyKind",
                                                                         static_cast<int>(kind)));
  }
  if (const cudaError_t error = check_side(destination, bytes, device_destination, "destination", "cudaMemcpy"))
    return error;
  if (const cudaError_t error = check_side(source, bytes, device_source, "source", "cudaMemcpy")) return error;
  std::memmove(destination, source, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* destination, const void* source, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (const cudaError_t error = check_stream(stream, "cudaMemcpyAsync")) return error;
  return cudaMemcpy(destination, source, bytes, kind);
}

cudaError_t cudaMemset(void* destination, int value, std::size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (const cudaError_t error = check_side(destination, bytes, true, "destination", "cudaMemset")) return error;
  std::memset(destination, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* destination, int value, std::size_t bytes, cudaStream_t stream) {
  if (const cudaError_t error = check_stream(stream, "cudaMemsetAsync")) return error;
  return cudaMemset(destination, value, bytes);
}

bool is_live_stream(cudaStream_t stream) {
  if (!stream) return true;  // the default stream
  std::lock_guard lock(registry().mutex);
  return registry().streams.count(stream) != 0;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  if (!stream) return record_error(cudaErrorInvalidValue, "cudaStreamCreate: the stream argument is null");
  *stream = new Stream;
  std::lock_guard lock(registry().mutex);
  registry().streams.insert(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream) return record_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: the default stream cannot be destroyed");
  if (const cudaError_t error = check_stream(stream, "cudaStreamDestroy")) return error;
  std::lock_guard lock(registry().mutex);
  registry().streams.erase(stream);
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) { return check_stream(stream, "cudaStreamSynchronize"); }
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (const cudaError_t error = check_stream(stream, "cudaStreamWaitEvent")) return error;
  return check_event(event, "cudaStreamWaitEvent");
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  if (!event) return record_error(cudaErrorInvalidValue, "cudaEventCreate: the event argument is null");
  *event = new Event;
  std::lock_guard lock(registry().mutex);
  registry().events.insert(*event);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (const cudaError_t error = check_event(event, "cudaEventDestroy")) return error;
  std::lock_guard lock(registry().mutex);
  registry().events.erase(event);
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (const cudaError_t error = check_event(event, "cudaEventRecord")) return error;
  if (const cudaError_t error = check_stream(stream, "cudaEventRecord")) return error;
  event->recorded = std::chrono::steady_clock::now();
  event->has_recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) { return check_event(event, "cudaEventSynchronize"); }
cudaError_t cudaEventQuery(cudaEvent_t event) { return check_event(event, "cudaEventQuery"); }
cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  if (const cudaError_t error = check_event(start, "cudaEventElapsedTime")) return error;
  if (const cudaError_t error = check_event(end, "cudaEventElapsedTime")) return error;
  if (!milliseconds || !start->has_recorded || !end->has_recorded)
    return record_error(cudaErrorInvalidValue, "cudaEventElapsedTime: both events must have been recorded");
  *milliseconds = std::chrono::duration<float, std::milli>(end->recorded - start->recorded).count();
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetDevice(int* device) {
  if (!device) return record_error(cudaErrorInvalidValue, "cudaGetDevice: the device argument is null");
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device != 0) return record_error(cudaErrorInvalidValue, fmt::format("cudaSetDevice({}): the emulator has device 0 only", device));
  return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return record_error(cudaErrorInvalidValue, "cudaGetDeviceCount: the count argument is null");
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize)
    return record_error(cudaErrorInvalidValue, fmt::format("cudaFuncSetAttribute: attribute {} is not emulated",
                                                           static_cast<int>(attribute)));
  if (value < 0 || static_cast<std::size_t>(value) > kMaxDynamicSharedBytes)
    return record_error(cudaErrorInvalidValue,
                        fmt::format("cudaFuncSetAttribute: {} bytes of dynamic shared memory asked; sm_90 allows at most {}",
                                    value, kMaxDynamicSharedBytes));
  std::lock_guard lock(registry().mutex);
  registry().shared_limits[kernel] = static_cast<std::size_t>(value);
  return cudaSuccess;
}

std::size_t dynamic_shared_limit(const void* kernel) {
  std::lock_guard lock(registry().mutex);
  const auto found = registry().shared_limits.find(kernel);
  return found == registry().shared_limits.end() ? kDefaultDynamicSharedBytes : found->second;
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}
cudaError_t cudaPeekAtLastError() { return last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

}  // namespace kiln::emu
