// MemoryLedger: current and peak bytes per category and device, the total's peak, and
// thread safety.
#include "kernels/memory/memory_ledger.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "kernels/memory/device_buffer.hpp"
#include "kernels/tensor.hpp"

namespace {

using kiln::Device;
using kiln::memory::MemoryCategory;
using kiln::memory::MemoryLedger;
using kiln::memory::MemoryUsage;

TEST(MemoryLedger, TracksCurrentAndPeakPerCategory) {
  MemoryLedger ledger;
  ledger.record_allocation(MemoryCategory::parameters, Device::Cpu, 100);
  ledger.record_allocation(MemoryCategory::activations, Device::Cpu, 300);
  ledger.record_release(MemoryCategory::activations, Device::Cpu, 300);
  ledger.record_allocation(MemoryCategory::activations, Device::Cpu, 200);
  ledger.record_allocation(MemoryCategory::kv_cache, Device::Cuda, 50);
  const auto cpu = ledger.snapshot(Device::Cpu);
  EXPECT_EQ(cpu[MemoryCategory::parameters], (MemoryUsage{100, 100}));
  EXPECT_EQ(cpu[MemoryCategory::activations], (MemoryUsage{200, 300}));
  EXPECT_EQ(cpu[MemoryCategory::kv_cache], (MemoryUsage{0, 0}));  // on the other device
  EXPECT_EQ(cpu.total, (MemoryUsage{300, 400}));                   // the sum's peak, not 100 + 300 + 200
  EXPECT_EQ(ledger.usage(MemoryCategory::kv_cache, Device::Cuda), (MemoryUsage{50, 50}));
  EXPECT_EQ(ledger.snapshot(Device::Cuda).total, (MemoryUsage{50, 50}));
}

TEST(MemoryLedger, CountsBuffersMadeOnManyThreads) {
  MemoryLedger ledger;
  // Made before the threads start, so every one of their buffers lives beside it (made after
  // them, it could come once they had all finished on a busy machine: a peak of only 128).
  const kiln::memory::DeviceBuffer kept(128, MemoryCategory::workspace, kiln::memory::host_allocator(), ledger);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        const kiln::memory::DeviceBuffer buffer(64, MemoryCategory::workspace, kiln::memory::host_allocator(), ledger);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto usage = ledger.usage(MemoryCategory::workspace, Device::Cpu);
  EXPECT_EQ(usage.current, 128u);
  EXPECT_GE(usage.peak, 128u + 64u);
  EXPECT_LE(usage.peak, 128u + 4 * 64u);
}

TEST(MemoryLedger, HostBuffersCountAsWorkspaceInTheProcessLedger) {
  const auto before = MemoryLedger::process().usage(MemoryCategory::workspace, Device::Cpu).current;
  {
    const kiln::HostBuffer buffer(1000);
    EXPECT_EQ(MemoryLedger::process().usage(MemoryCategory::workspace, Device::Cpu).current, before + 1024);
  }
  EXPECT_EQ(MemoryLedger::process().usage(MemoryCategory::workspace, Device::Cpu).current, before);
}

}  // namespace
