#pragma once
// One allocation for one category, carved into the slots of an ArenaPlan (DESIGN.md §4):
// parameters, gradients, optimizer state, activations, staging buffers, pipeline links and
// the KV cache all live in arenas. Planned first, allocated once from an Allocator, counted
// in a MemoryLedger; allocate() with an equal plan keeps the memory (and its contents), so a
// caller may re-plan every micro-batch and pay only when (micro-batch, seq_len) changes.
#include <cstddef>

#include "kernels/memory/arena_plan.hpp"
#include "kernels/memory/device_buffer.hpp"
#include "kernels/tensor.hpp"

namespace kiln::memory {

class Arena {
 public:
  Arena() : Arena(MemoryCategory::workspace) {}
  explicit Arena(MemoryCategory category, Allocator& allocator = host_allocator(),
                 MemoryLedger& ledger = MemoryLedger::process());

  // Adopts `plan`. When it differs from the current one (or nothing is allocated yet), frees
  // the old memory first, then allocates the new, zero-filled; returns whether it allocated.
  bool allocate(ArenaPlan plan);
  // Frees the memory and forgets the plan.
  void release();

  // The slot's contiguous view, on the arena's device. Throws before allocate().
  Tensor view(ArenaSlot slot) const;

  const ArenaPlan& plan() const { return plan_; }
  std::size_t bytes() const { return buffer_.allocated(); }  // what the ledger counts
  bool allocated() const { return allocated_; }
  MemoryCategory category() const { return category_; }
  Device device() const;

 private:
  MemoryCategory category_;
  Allocator* allocator_;
  MemoryLedger* ledger_;
  ArenaPlan plan_;
  DeviceBuffer buffer_;
  bool allocated_ = false;
};

}  // namespace kiln::memory
