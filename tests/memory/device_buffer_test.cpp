// DeviceBuffer: RAII over an allocator, counted in a ledger while it lives, move-only, and
// views that carry its device.
#include "kernels/memory/device_buffer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/tensor.hpp"
#include "tests/core/error_testing.hpp"

namespace {

using kiln::DType;
using kiln::Device;
using kiln::memory::Allocator;
using kiln::memory::DeviceBuffer;
using kiln::memory::MemoryCategory;
using kiln::memory::MemoryLedger;
using kiln::testing::error_of;

// A stand-in for a device allocator: host memory labelled Cuda, counting its calls, so the
// test sees which device the views claim and that nothing is freed twice.
class CountingAllocator final : public Allocator {
 public:
  Device device() const override { return Device::Cuda; }
  std::string_view name() const override { return "counting"; }
  void* allocate(std::size_t bytes, std::size_t alignment) override {
    ++allocations;
    return kiln::memory::host_allocator().allocate(bytes, alignment);
  }
  std::size_t allocation_size(std::size_t bytes, std::size_t alignment) const override {
    return kiln::memory::host_allocator().allocation_size(bytes, alignment);
  }
  void free(void* memory, std::size_t bytes, std::size_t alignment) noexcept override {
    ++frees;
    kiln::memory::host_allocator().free(memory, bytes, alignment);
  }
  int allocations = 0;
  int frees = 0;
};

static_assert(!std::is_copy_constructible_v<DeviceBuffer>);
static_assert(!std::is_copy_assignable_v<DeviceBuffer>);
static_assert(std::is_nothrow_move_constructible_v<DeviceBuffer>);
static_assert(std::is_nothrow_move_assignable_v<DeviceBuffer>);

TEST(DeviceBuffer, CountsWhileItLivesAndFreesOnce) {
  CountingAllocator allocator;
  MemoryLedger ledger;
  {
    DeviceBuffer buffer(1000, MemoryCategory::gradients, allocator, ledger);
    EXPECT_EQ(buffer.size(), 1000u);
    EXPECT_EQ(buffer.allocated(), 1024u);  // the host allocator pads to 64
    EXPECT_EQ(buffer.device(), Device::Cuda);
    EXPECT_EQ(buffer.allocator(), &allocator);
    EXPECT_EQ(ledger.usage(MemoryCategory::gradients, Device::Cuda).current, 1024u);
    EXPECT_EQ(ledger.usage(MemoryCategory::gradients, Device::Cpu).current, 0u);
  }
  EXPECT_EQ(allocator.allocations, 1);
  EXPECT_EQ(allocator.frees, 1);
  EXPECT_EQ(ledger.usage(MemoryCategory::gradients, Device::Cuda), (kiln::memory::MemoryUsage{0, 1024}));
}

TEST(DeviceBuffer, MovesTransferOwnership) {
  CountingAllocator allocator;
  MemoryLedger ledger;
  DeviceBuffer a(256, MemoryCategory::parameters, allocator, ledger);
  void* const memory = a.data();
  DeviceBuffer b = std::move(a);
  EXPECT_EQ(b.data(), memory);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_TRUE(a.empty());
  DeviceBuffer c(64, MemoryCategory::parameters, allocator, ledger);
  c = std::move(b);  // frees c's own memory first
  EXPECT_EQ(c.data(), memory);
  EXPECT_EQ(allocator.frees, 1);
  EXPECT_EQ(ledger.usage(MemoryCategory::parameters, Device::Cuda).current, 256u);
  EXPECT_EQ(ledger.usage(MemoryCategory::parameters, Device::Cuda).peak, 320u);
  c = std::move(c);  // self-move keeps the memory
  EXPECT_EQ(c.data(), memory);
  c.release();
  EXPECT_EQ(allocator.frees, 2);
  EXPECT_EQ(ledger.usage(MemoryCategory::parameters, Device::Cuda).current, 0u);
}

TEST(DeviceBuffer, ViewsCarryTheDeviceAndAreBoundsChecked) {
  CountingAllocator allocator;
  MemoryLedger ledger;
  const DeviceBuffer buffer(128, MemoryCategory::pipeline, allocator, ledger);
  const kiln::Tensor view = buffer.view(DType::F32, {4, 4}, 64);
  EXPECT_EQ(view.device, Device::Cuda);
  EXPECT_EQ(static_cast<std::byte*>(view.ptr) - static_cast<std::byte*>(buffer.data()), 64);
  EXPECT_NE(error_of([&] { (void)buffer.view(DType::F32, {4, 5}, 64); }).find("pipeline buffer of 128 bytes cannot hold"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)buffer.view(DType::F64, {1}, 4); }).find("not aligned for f64"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)buffer.view(DType::F32, {1}, SIZE_MAX - 1); }).find("cannot hold"), std::string::npos);
}

TEST(DeviceBuffer, EmptyBufferAllocatesNothing) {
  CountingAllocator allocator;
  MemoryLedger ledger;
  const DeviceBuffer buffer(0, MemoryCategory::workspace, allocator, ledger);
  EXPECT_EQ(buffer.data(), nullptr);
  EXPECT_EQ(allocator.allocations, 0);
}

TEST(HostAllocator, RefusesBadRequestsWithAnError) {
  auto& host = kiln::memory::host_allocator();
  EXPECT_NE(error_of([&] { host.allocate(64, 48); }).find("alignment 48 is not a power of two"), std::string::npos);
  EXPECT_NE(error_of([&] { host.allocate(SIZE_MAX - 8, 64); }).find("host allocator"), std::string::npos);
  EXPECT_NE(error_of([&] { host.allocate(std::size_t{1} << 62, 64); }).find("out of memory"), std::string::npos);
  void* memory = host.allocate(100, 256);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(memory) % 256, 0u);
  EXPECT_EQ(static_cast<unsigned char*>(memory)[127], 0);  // zero-filled up to the padding
  host.free(memory, 100, 256);
}

}  // namespace
