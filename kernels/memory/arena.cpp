#include "kernels/memory/arena.hpp"

#include <algorithm>
#include <utility>

#include "trainer/core/error.hpp"

namespace kiln::memory {

Arena::Arena(MemoryCategory category, Allocator& allocator, MemoryLedger& ledger)
    : category_(category), allocator_(&allocator), ledger_(&ledger) {}

bool Arena::allocate(ArenaPlan plan) {
  if (allocated_ && plan == plan_) return false;
  release();  // before the new allocation, so the peak is the larger arena, not both
  try {
    buffer_ = DeviceBuffer(plan.bytes(), category_, *allocator_, *ledger_, plan.alignment());
  } catch (const Error& error) {
    // Say what the memory was for: the allocator only knows a byte count.
    const auto& largest = *std::max_element(plan.entries().begin(), plan.entries().end(),
                                            [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
    fail("{} arena of {} slot(s), {} bytes in all (largest '{}' {}{}): {}", memory_category_name(category_),
         plan.size(), plan.bytes(), largest.name, dtype_name(largest.dtype), largest.shape.str(), error.what());
  }
  plan_ = std::move(plan);
  allocated_ = true;
  return true;
}

void Arena::release() {
  buffer_.release();
  plan_ = {};
  allocated_ = false;
}

Tensor Arena::view(ArenaSlot slot) const {
  if (!allocated_) fail("{} arena: view of a slot before allocate()", memory_category_name(category_));
  const ArenaPlan::Entry& entry = plan_.entry(slot);
  // A plan of only zero-byte slots has no memory, yet its views must be defined (ops treat an
  // undefined tensor as "argument not given"). They hold no element, so this stand-in
  // address is never read, whatever the device.
  if (entry.bytes == 0 && buffer_.data() == nullptr) {
    alignas(kDefaultAlignment) static std::byte empty[kDefaultAlignment];
    return Tensor(empty, entry.dtype, entry.shape, device());
  }
  return buffer_.view(entry.dtype, entry.shape, entry.offset);
}

Device Arena::device() const { return allocator_->device(); }

}  // namespace kiln::memory
