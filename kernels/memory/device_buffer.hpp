#pragma once
// An owning, device-aware buffer (DESIGN.md §4): memory from an Allocator, for one
// MemoryCategory, counted in a MemoryLedger while it lives. Move-only RAII; hands out Tensor
// views that carry the buffer's device. The views must not outlive the buffer.
#include <cstddef>
#include <cstdint>

#include "kernels/memory/allocator.hpp"
#include "kernels/memory/host_allocator.hpp"
#include "kernels/memory/memory_category.hpp"
#include "kernels/memory/memory_ledger.hpp"

namespace kiln {
// kernels/tensor.hpp (which includes this header for HostBuffer) defines them.
enum class DType : std::uint8_t;
class Shape;
struct Tensor;
}  // namespace kiln

namespace kiln::memory {

inline constexpr std::size_t kDefaultAlignment = 64;

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // `bytes` zero-filled bytes (none for 0: data() is null).
  DeviceBuffer(std::size_t bytes, MemoryCategory category, Allocator& allocator = host_allocator(),
               MemoryLedger& ledger = MemoryLedger::process(), std::size_t alignment = kDefaultAlignment);
  ~DeviceBuffer() { release(); }

  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;

  void* data() const { return memory_; }
  std::size_t size() const { return bytes_; }       // as requested
  std::size_t allocated() const { return counted_; }  // as counted: the allocator's padding included
  bool empty() const { return bytes_ == 0; }
  Device device() const { return device_; }
  MemoryCategory category() const { return category_; }
  Allocator* allocator() const { return allocator_; }

  // A contiguous view of `extents` starting `byte_offset` into the buffer, on its device;
  // throws kiln::Error when it does not fit or the offset is not aligned for the dtype.
  Tensor view(DType dtype, Shape extents, std::size_t byte_offset = 0) const;

  // Frees the memory now; the buffer becomes empty.
  void release() noexcept;

 private:
  void* memory_ = nullptr;
  std::size_t bytes_ = 0;
  std::size_t counted_ = 0;
  std::size_t alignment_ = kDefaultAlignment;
  Device device_{};
  MemoryCategory category_ = MemoryCategory::workspace;
  Allocator* allocator_ = nullptr;
  MemoryLedger* ledger_ = nullptr;
};

}  // namespace kiln::memory
