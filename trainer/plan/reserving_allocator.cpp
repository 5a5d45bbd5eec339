#include "trainer/plan/reserving_allocator.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernels/memory/host_allocator.hpp"
#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"

namespace kiln::plan {

Device ReservingAllocator::device() const { return Device::Cpu; }

void* ReservingAllocator::allocate(std::size_t bytes, std::size_t alignment) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (alignment > page) fail("plan: an alignment of {} bytes is more than a page ({} bytes)", alignment, page);
  const std::size_t size = allocation_size(bytes, alignment);
  // MAP_NORESERVE: no swap is set aside, so a reservation larger than the machine succeeds.
  void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (memory == MAP_FAILED)
    fail("plan: cannot reserve {} bytes of address space to plan the layout's buffers: {}", size, std::strerror(errno));
  return memory;
}

std::size_t ReservingAllocator::allocation_size(std::size_t bytes, std::size_t alignment) const {
  return memory::host_allocator().allocation_size(bytes, alignment);
}

void ReservingAllocator::free(void* memory, std::size_t bytes, std::size_t alignment) noexcept {
  munmap(memory, allocation_size(bytes, alignment));
}

}  // namespace kiln::plan
