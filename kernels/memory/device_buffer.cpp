#include "kernels/memory/device_buffer.hpp"

#include <utility>

#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"

namespace kiln::memory {

DeviceBuffer::DeviceBuffer(std::size_t bytes, MemoryCategory category, Allocator& allocator, MemoryLedger& ledger,
                           std::size_t alignment)
    : bytes_(bytes), alignment_(alignment), device_(allocator.device()), category_(category),
      allocator_(&allocator), ledger_(&ledger) {
  if (bytes == 0) return;
  memory_ = allocator.allocate(bytes, alignment);
  counted_ = allocator.allocation_size(bytes, alignment);
  ledger.record_allocation(category, device_, counted_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : memory_(std::exchange(other.memory_, nullptr)), bytes_(std::exchange(other.bytes_, 0)),
      counted_(std::exchange(other.counted_, 0)), alignment_(other.alignment_), device_(other.device_),
      category_(other.category_), allocator_(other.allocator_), ledger_(other.ledger_) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this == &other) return *this;
  release();
  memory_ = std::exchange(other.memory_, nullptr);
  bytes_ = std::exchange(other.bytes_, 0);
  counted_ = std::exchange(other.counted_, 0);
  alignment_ = other.alignment_;
  device_ = other.device_;
  category_ = other.category_;
  allocator_ = other.allocator_;
  ledger_ = other.ledger_;
  return *this;
}

void DeviceBuffer::release() noexcept {
  if (memory_ != nullptr) {
    allocator_->free(memory_, bytes_, alignment_);
    ledger_->record_release(category_, device_, counted_);
  }
  memory_ = nullptr;
  bytes_ = counted_ = 0;
}

Tensor DeviceBuffer::view(DType dtype, Shape extents, std::size_t byte_offset) const {
  const std::int64_t numel = extents.numel();
  if (numel < 0) fail("buffer view {}{}: extents must not be negative", dtype_name(dtype), extents.str());
  const std::size_t bytes = static_cast<std::size_t>(numel) * dtype_size(dtype);
  if (byte_offset > bytes_ || bytes > bytes_ - byte_offset)
    fail("{} buffer of {} bytes cannot hold {}{} at offset {}", memory_category_name(category_), bytes_,
         dtype_name(dtype), extents.str(), byte_offset);
  if (byte_offset % dtype_size(dtype) != 0)
    fail("{} buffer offset {} is not aligned for {}", memory_category_name(category_), byte_offset, dtype_name(dtype));
  return Tensor(static_cast<std::byte*>(memory_) + byte_offset, dtype, extents, device_);
}

}  // namespace kiln::memory
