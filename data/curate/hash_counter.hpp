#pragma once
// Counts 64-bit keys (already hashes) in an open-addressing table that is reused from one
// document to the next: the per-document rules call it millions of times, and a node-based
// std::unordered_map would allocate on every insert.
#include <cstdint>
#include <vector>

namespace kiln::curate {

class HashCounter {
 public:
  // Empties the table and sizes it for about `expected` distinct keys.
  void reset(std::size_t expected) {
    std::size_t capacity = 16;
    while (capacity < expected * 2) capacity <<= 1;
    if (slots_.size() < capacity || slots_.size() > capacity * 8) slots_.assign(capacity, Slot{});
    else std::fill(slots_.begin(), slots_.end(), Slot{});
    mask_ = slots_.size() - 1;
  }

  // Adds one to key's count and returns the new count.
  std::uint32_t add(std::uint64_t key) {
    std::size_t index = (key ^ (key >> 29)) & mask_;
    while (slots_[index].count != 0 && slots_[index].key != key) index = (index + 1) & mask_;
    slots_[index].key = key;
    return ++slots_[index].count;
  }

 private:
  struct Slot {
    std::uint64_t key = 0;
    std::uint32_t count = 0;
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

}  // namespace kiln::curate
