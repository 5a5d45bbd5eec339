#pragma once
// Aligned, zero-filled host memory (what HostBuffer always handed out).
#include "kernels/memory/allocator.hpp"

namespace kiln::memory {

class HostAllocator final : public Allocator {
 public:
  // Every host allocation is at least this aligned and padded to a multiple of it, so that
  // SIMD loops may read a whole final vector without leaving the allocation.
  static constexpr std::size_t kMinAlignment = 64;

  Device device() const override;
  std::string_view name() const override { return "host"; }
  void* allocate(std::size_t bytes, std::size_t alignment) override;
  std::size_t allocation_size(std::size_t bytes, std::size_t alignment) const override;
  void free(void* memory, std::size_t bytes, std::size_t alignment) noexcept override;
};

// The process's host allocator (stateless; shared by every host buffer).
HostAllocator& host_allocator();

}  // namespace kiln::memory
