// Arena planning: slot alignment, non-overlapping views, re-allocation only when the plan
// changes, views on the arena's device, and the errors of a bad slot.
#include "kernels/memory/arena.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "tests/core/error_testing.hpp"

namespace {

using kiln::DType;
using kiln::Shape;
using kiln::Tensor;
using kiln::memory::Arena;
using kiln::memory::ArenaPlan;
using kiln::memory::ArenaSlot;
using kiln::memory::MemoryCategory;
using kiln::memory::MemoryLedger;
using kiln::testing::error_of;

std::uintptr_t address(const Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.ptr); }

TEST(ArenaPlan, AlignsEverySlotAndPacksThemInOrder) {
  ArenaPlan plan;
  const ArenaSlot a = plan.reserve("a", DType::F32, {3});          // 12 bytes at 0
  const ArenaSlot b = plan.reserve("b", DType::F64, {5}, 128);     // 40 bytes at 128
  const ArenaSlot c = plan.reserve("c", DType::U8, {1});           // 1 byte at 192
  const ArenaSlot d = plan.reserve("d", DType::I32, {2, 2}, 256);  // 16 bytes at 256
  EXPECT_EQ(plan.entry(a).offset, 0u);
  EXPECT_EQ(plan.entry(b).offset, 128u);
  EXPECT_EQ(plan.entry(c).offset, 192u);
  EXPECT_EQ(plan.entry(d).offset, 256u);
  EXPECT_EQ(plan.entry(d).bytes, 16u);
  EXPECT_EQ(plan.alignment(), 256u);
  EXPECT_EQ(plan.bytes(), 512u);  // 272 rounded up to the largest alignment
  ArenaPlan small;
  small.reserve("a", DType::F32, {3});
  EXPECT_EQ(small.bytes(), 64u);
}

TEST(ArenaPlan, RefusesBadShapesAndAlignmentsNamingTheSlot) {
  ArenaPlan plan;
  EXPECT_NE(error_of([&] { plan.reserve("logits", DType::F32, {2, -1}); }).find("arena slot 'logits' has shape"),
            std::string::npos);
  EXPECT_NE(error_of([&] { plan.reserve("odd", DType::F32, {4}, 48); }).find("arena slot 'odd' has alignment 48"),
            std::string::npos);
  EXPECT_NE(error_of([&] { plan.reserve("small", DType::F64, {4}, 4); }).find("at least 8"), std::string::npos);
  EXPECT_NE(error_of([&] { plan.reserve("huge", DType::F32, {1LL << 30, 1LL << 30}); }).find("larger than 2^48"),
            std::string::npos);
  EXPECT_EQ(plan.size(), 0u);
  EXPECT_NE(error_of([&] { (void)plan.entry(ArenaSlot{}); }).find("not in this plan"), std::string::npos);
}

TEST(Arena, SlotViewsAreAlignedDisjointAndOnTheArenasDevice) {
  MemoryLedger ledger;
  Arena arena(MemoryCategory::activations, kiln::memory::host_allocator(), ledger);
  ArenaPlan plan;
  std::vector<ArenaSlot> slots;
  for (int i = 0; i < 6; ++i) slots.push_back(plan.reserve("s", i % 2 ? DType::F64 : DType::BF16, {i + 1, 3}, 64u << (i % 3)));
  arena.allocate(plan);
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const Tensor view = arena.view(slots[i]);
    EXPECT_EQ(view.device, kiln::Device::Cpu);
    EXPECT_EQ(view.shape, (Shape{static_cast<std::int64_t>(i) + 1, 3}));
    EXPECT_EQ(address(view) % plan.entry(slots[i]).alignment, 0u) << "slot " << i;
    ranges.emplace_back(address(view), address(view) + view.nbytes());
    std::memset(view.ptr, 0xff, view.nbytes());  // inside the allocation (the sanitizers would see)
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
  EXPECT_EQ(arena.bytes(), plan.bytes());
}

TEST(Arena, AllocatesAgainOnlyWhenThePlanChanges) {
  MemoryLedger ledger;
  Arena arena(MemoryCategory::activations, kiln::memory::host_allocator(), ledger);
  const auto plan_for = [](std::int64_t batch, std::int64_t seq) {
    ArenaPlan plan;
    plan.reserve("x", DType::F32, {batch, seq, 8});
    plan.reserve("ids", DType::I32, {batch, seq});
    return plan;
  };
  EXPECT_TRUE(arena.allocate(plan_for(2, 4)));
  const Tensor first = arena.view(ArenaSlot{0});
  first.data<float>()[5] = 7.0f;
  EXPECT_FALSE(arena.allocate(plan_for(2, 4)));  // same (micro-batch, seq_len): same memory, kept contents
  EXPECT_EQ(arena.view(ArenaSlot{0}).ptr, first.ptr);
  EXPECT_EQ(arena.view(ArenaSlot{0}).data<float>()[5], 7.0f);
  const std::size_t small = arena.bytes();

  EXPECT_TRUE(arena.allocate(plan_for(4, 4)));
  EXPECT_EQ(arena.view(ArenaSlot{0}).data<float>()[5], 0.0f);  // a new allocation is zero-filled
  const auto usage = ledger.usage(MemoryCategory::activations, kiln::Device::Cpu);
  EXPECT_EQ(usage.current, arena.bytes());
  EXPECT_EQ(usage.peak, arena.bytes());  // the old arena went first: never both at once
  EXPECT_GT(arena.bytes(), small);

  arena.release();
  EXPECT_FALSE(arena.allocated());
  EXPECT_EQ(ledger.usage(MemoryCategory::activations, kiln::Device::Cpu).current, 0u);
  EXPECT_NE(error_of([&] { (void)arena.view(ArenaSlot{0}); }).find("before allocate()"), std::string::npos);
}

TEST(Arena, AnAllocationThatFailsSaysWhatItWasFor) {
  MemoryLedger ledger;
  Arena arena(MemoryCategory::activations, kiln::memory::host_allocator(), ledger);
  ArenaPlan plan;
  plan.reserve("positions", DType::I32, {4});
  plan.reserve("logits", DType::F32, {1LL << 23, 1LL << 22});  // 128 TiB
  const std::string message = error_of([&] { arena.allocate(plan); });
  EXPECT_NE(message.find("activations arena of 2 slot(s)"), std::string::npos) << message;
  EXPECT_NE(message.find("largest 'logits' f32[8388608, 4194304]"), std::string::npos) << message;
  EXPECT_NE(message.find("out of memory"), std::string::npos) << message;
  EXPECT_FALSE(arena.allocated());
  EXPECT_EQ(ledger.snapshot(kiln::Device::Cpu).total.peak, 0u);
}

TEST(Arena, EmptySlotsStillViewAsDefined) {
  MemoryLedger ledger;
  Arena arena(MemoryCategory::optimizer_state, kiln::memory::host_allocator(), ledger);
  ArenaPlan plan;
  const ArenaSlot none = plan.reserve("exp_avg", DType::F32, {0});
  arena.allocate(plan);
  EXPECT_TRUE(arena.view(none).defined());
  EXPECT_EQ(arena.view(none).numel(), 0);
  EXPECT_EQ(ledger.snapshot(kiln::Device::Cpu).total.peak, 0u);
}

TEST(Arena, MovesKeepTheViewsValid) {
  MemoryLedger ledger;
  Arena arena(MemoryCategory::kv_cache, kiln::memory::host_allocator(), ledger);
  ArenaPlan plan;
  const ArenaSlot keys = plan.reserve("keys", DType::F32, {4});
  arena.allocate(plan);
  const Tensor before = arena.view(keys);
  Arena moved = std::move(arena);
  EXPECT_EQ(moved.view(keys).ptr, before.ptr);
  EXPECT_EQ(ledger.usage(MemoryCategory::kv_cache, kiln::Device::Cpu).current, moved.bytes());
}

}  // namespace
