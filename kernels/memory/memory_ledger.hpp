#pragma once
// Current and peak bytes per (category, device) of every allocation made through it: the
// numbers of the memory report (banner, metrics.jsonl) come from here, not from an estimate.
//
// One ledger per process by default (MemoryLedger::process()): buffers are created deep
// inside the model, the optimizer and the parallel layers, and a process-wide ledger sees
// them all without threading a reference through every constructor. Buffers and arenas take
// a ledger argument too, so a test can count into its own. Thread-safe: buffers may be made
// and freed from any thread.
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "kernels/memory/memory_category.hpp"

namespace kiln {
enum class Device : std::uint8_t;  // kernels/tensor.hpp
}

namespace kiln::memory {

struct MemoryUsage {
  std::size_t current = 0;  // bytes held now
  std::size_t peak = 0;     // the most held at any one time
  bool operator==(const MemoryUsage&) const = default;
};

// One device's usage: per category, and over all categories (whose peak is the peak of the
// sum, at most the sum of the peaks).
struct MemorySnapshot {
  std::array<MemoryUsage, kMemoryCategories.size()> categories{};
  MemoryUsage total;
  const MemoryUsage& operator[](MemoryCategory category) const {
    return categories[static_cast<std::size_t>(category)];
  }
};

class MemoryLedger {
 public:
  static MemoryLedger& process();

  void record_allocation(MemoryCategory category, Device device, std::size_t bytes);
  // Never more than was allocated (buffers release exactly what they recorded).
  void record_release(MemoryCategory category, Device device, std::size_t bytes) noexcept;

  MemoryUsage usage(MemoryCategory category, Device device) const;
  MemorySnapshot snapshot(Device device) const;

 private:
  static constexpr std::size_t kDevices = 2;  // Device::Cpu, Device::Cuda
  mutable std::mutex mutex_;
  std::array<MemorySnapshot, kDevices> devices_{};
};

}  // namespace kiln::memory
