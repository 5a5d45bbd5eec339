#include "kernels/memory/memory_ledger.hpp"

#include <algorithm>

#include "kernels/tensor.hpp"

namespace kiln::memory {

namespace {

void add(MemoryUsage& usage, std::size_t bytes) {
  usage.current += bytes;
  usage.peak = std::max(usage.peak, usage.current);
}

void subtract(MemoryUsage& usage, std::size_t bytes) { usage.current -= std::min(usage.current, bytes); }

}  // namespace

MemoryLedger& MemoryLedger::process() {
  static MemoryLedger ledger;
  return ledger;
}

void MemoryLedger::record_allocation(MemoryCategory category, Device device, std::size_t bytes) {
  const std::lock_guard lock(mutex_);
  MemorySnapshot& usage = devices_[static_cast<std::size_t>(device)];
  add(usage.categories[static_cast<std::size_t>(category)], bytes);
  add(usage.total, bytes);
}

void MemoryLedger::record_release(MemoryCategory category, Device device, std::size_t bytes) noexcept {
  const std::lock_guard lock(mutex_);
  MemorySnapshot& usage = devices_[static_cast<std::size_t>(device)];
  subtract(usage.categories[static_cast<std::size_t>(category)], bytes);
  subtract(usage.total, bytes);
}

MemoryUsage MemoryLedger::usage(MemoryCategory category, Device device) const {
  return snapshot(device)[category];
}

MemorySnapshot MemoryLedger::snapshot(Device device) const {
  const std::lock_guard lock(mutex_);
  return devices_[static_cast<std::size_t>(device)];
}

}  // namespace kiln::memory
