#pragma once
// Address space without memory, for `kiln plan`: a rank's training buffers are built exactly as
// the trainer builds them (the same arenas, counted by the same memory ledger), but on pages
// the kernel only commits when they are touched. Planning a 70B-parameter layout on a laptop
// then costs the few pages of index tables that planning writes (the activation arena's
// positions and zero ids), not the terabytes the layout describes.
//
// The memory reads as zeros (anonymous pages), as the Allocator contract asks. Sizes are
// counted as the host allocator counts them, so the plan's bytes are what the ledger reports
// for the same buffers on the CPU backend.
#include "kernels/memory/allocator.hpp"

namespace kiln::plan {

class ReservingAllocator final : public memory::Allocator {
 public:
  Device device() const override;
  std::string_view name() const override { return "reserved address space"; }
  void* allocate(std::size_t bytes, std::size_t alignment) override;
  std::size_t allocation_size(std::size_t bytes, std::size_t alignment) const override;
  void free(void* memory, std::size_t bytes, std::size_t alignment) noexcept override;
};

}  // namespace kiln::plan
