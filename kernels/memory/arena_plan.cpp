#include "kernels/memory/arena_plan.hpp"

#include <algorithm>
#include <bit>

#include "trainer/core/error.hpp"

namespace kiln::memory {

namespace {

std::size_t round_up(std::size_t bytes, std::size_t alignment) { return (bytes + alignment - 1) / alignment * alignment; }

// Far beyond any real arena, and small enough that offsets and sizes cannot overflow.
constexpr std::size_t kMaxSlotBytes = std::size_t{1} << 48;

}  // namespace

ArenaSlot ArenaPlan::reserve(std::string name, DType dtype, Shape shape, std::size_t alignment) {
  for (const std::int64_t extent : shape)
    if (extent < 0) fail("arena slot '{}' has shape {}; extents must be >= 0", name, shape.str());
  if (!std::has_single_bit(alignment) || alignment < dtype_size(dtype))
    fail("arena slot '{}' has alignment {}; expected a power of two of at least {} (the size of {})", name,
         alignment, dtype_size(dtype), dtype_name(dtype));
  const auto numel = static_cast<std::size_t>(shape.numel());
  if (numel > kMaxSlotBytes / dtype_size(dtype))
    fail("arena slot '{}' {}{} is larger than 2^48 bytes", name, dtype_name(dtype), shape.str());
  Entry entry{std::move(name), dtype, shape, alignment, round_up(end_, alignment), numel * dtype_size(dtype)};
  end_ = entry.offset + entry.bytes;
  alignment_ = std::max(alignment_, alignment);
  entries_.push_back(std::move(entry));
  return {entries_.size() - 1};
}

std::size_t ArenaPlan::bytes() const { return round_up(end_, alignment_); }

const ArenaPlan::Entry& ArenaPlan::entry(ArenaSlot slot) const {
  if (slot.index >= entries_.size())
    fail("arena: slot {} is not in this plan of {} slot(s)", slot.valid() ? static_cast<long long>(slot.index) : -1LL,
         entries_.size());
  return entries_[slot.index];
}

}  // namespace kiln::memory
