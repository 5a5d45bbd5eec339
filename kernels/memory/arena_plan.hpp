#pragma once
// The layout of an arena, decided before any memory exists (DESIGN.md §4): named slots of a
// dtype and shape, each at an offset aligned for it, one after the other. A plan is a value:
// two plans with the same slots compare equal, which is how an Arena knows it need not
// allocate again (the same (micro-batch, seq_len) gives the same plan).
#include <cstddef>
#include <string>
#include <vector>

#include "kernels/memory/device_buffer.hpp"
#include "kernels/tensor.hpp"

namespace kiln::memory {

// A slot of a plan, and of every arena allocated for it.
struct ArenaSlot {
  std::size_t index = static_cast<std::size_t>(-1);
  bool valid() const { return index != static_cast<std::size_t>(-1); }
};

class ArenaPlan {
 public:
  struct Entry {
    std::string name;
    DType dtype = DType::F32;
    Shape shape;
    std::size_t alignment = kDefaultAlignment;
    std::size_t offset = 0;  // bytes from the arena's start, a multiple of alignment
    std::size_t bytes = 0;   // numel * dtype size
    bool operator==(const Entry&) const = default;
  };

  // A slot after the previous ones, at the next multiple of `alignment` (a power of two, at
  // least the dtype's size). Throws kiln::Error naming the slot for a bad shape or alignment.
  ArenaSlot reserve(std::string name, DType dtype, Shape shape, std::size_t alignment = kDefaultAlignment);

  // The arena's size: the end of the last slot rounded up to alignment().
  std::size_t bytes() const;
  // The largest slot alignment (kDefaultAlignment at least): the arena's own alignment.
  std::size_t alignment() const { return alignment_; }
  std::size_t size() const { return entries_.size(); }
  const Entry& entry(ArenaSlot slot) const;
  const std::vector<Entry>& entries() const { return entries_; }

  bool operator==(const ArenaPlan&) const = default;

 private:
  std::vector<Entry> entries_;
  std::size_t end_ = 0;
  std::size_t alignment_ = kDefaultAlignment;
};

}  // namespace kiln::memory
