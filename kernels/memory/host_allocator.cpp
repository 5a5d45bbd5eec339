#include "kernels/memory/host_allocator.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>

#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"

namespace kiln::memory {

namespace {

std::size_t effective_alignment(std::size_t alignment) {
  return std::max(alignment, HostAllocator::kMinAlignment);
}

std::size_t padded_size(std::size_t bytes, std::size_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

}  // namespace

Device HostAllocator::device() const { return Device::Cpu; }

void* HostAllocator::allocate(std::size_t bytes, std::size_t alignment) {
  if (alignment == 0 || !std::has_single_bit(alignment))
    fail("host allocator: alignment {} is not a power of two", alignment);
  if (bytes == 0) fail("host allocator: a request for 0 bytes (empty buffers allocate nothing)");
  const std::size_t align = effective_alignment(alignment);
  if (bytes > SIZE_MAX - align) fail("host allocator: {} bytes is more than can be addressed", bytes);
  const std::size_t padded = allocation_size(bytes, align);
  void* memory = nullptr;
  try {
    memory = ::operator new[](padded, std::align_val_t{align});
  } catch (const std::bad_alloc&) {
    fail("host allocator: out of memory allocating {} bytes ({:.1f} MiB)", padded,
         static_cast<double>(padded) / (1 << 20));
  }
  std::memset(memory, 0, padded);
  return memory;
}

std::size_t HostAllocator::allocation_size(std::size_t bytes, std::size_t alignment) const {
  return padded_size(bytes, effective_alignment(alignment));
}

void HostAllocator::free(void* memory, std::size_t /*bytes*/, std::size_t alignment) noexcept {
  ::operator delete[](memory, std::align_val_t{effective_alignment(alignment)});
}

HostAllocator& host_allocator() {
  static HostAllocator allocator;
  return allocator;
}

}  // namespace kiln::memory
