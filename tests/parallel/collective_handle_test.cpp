// Communicator v2 on a single process: handle semantics, non-blocking collectives on a group of
// one, splitting without knowing the backend, and the grid's control groups.
#include "parallel/collective_handle.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "parallel/communicator.hpp"
#include "parallel/communicator_factory.hpp"
#include "parallel/process_grid.hpp"
#include "trainer/core/error.hpp"

namespace kiln::parallel {
namespace {

// An operation that completes after `polls` calls to test(); records waits.
struct ScriptedOperation final : PendingCollective {
  ScriptedOperation(int polls, int& waits, bool fails = false) : polls(polls), waits(waits), fails(fails) {}
  bool test() override { return --polls <= 0; }
  void wait() override {
    ++waits;
    if (fails) fail("scripted failure");
  }
  int polls;
  int& waits;
  bool fails;
};

TEST(CollectiveHandle, DefaultIsComplete) {
  CollectiveHandle handle;
  EXPECT_TRUE(handle.done());
  EXPECT_TRUE(handle.test());
  handle.wait();
  EXPECT_TRUE(handle.done());
}

TEST(CollectiveHandle, TestProgressesUntilCompleteAndThenStaysComplete) {
  int waits = 0;
  CollectiveHandle handle(std::make_unique<ScriptedOperation>(3, waits));
  EXPECT_FALSE(handle.test());
  EXPECT_FALSE(handle.test());
  EXPECT_TRUE(handle.test());
  EXPECT_TRUE(handle.done());
  handle.wait();  // nothing left to wait for
  EXPECT_EQ(waits, 0);
}

TEST(CollectiveHandle, WaitIsIdempotent) {
  int waits = 0;
  CollectiveHandle handle(std::make_unique<ScriptedOperation>(100, waits));
  handle.wait();
  handle.wait();
  EXPECT_TRUE(handle.done());
  EXPECT_EQ(waits, 1);
}

TEST(CollectiveHandle, DestroyingOrReplacingAPendingHandleWaitsForIt) {
  int waits = 0;
  { CollectiveHandle handle(std::make_unique<ScriptedOperation>(100, waits)); }
  EXPECT_EQ(waits, 1);
  CollectiveHandle handle(std::make_unique<ScriptedOperation>(100, waits));
  handle = CollectiveHandle(std::make_unique<ScriptedOperation>(100, waits));
  EXPECT_EQ(waits, 2);  // the replaced operation was waited for
  CollectiveHandle moved = std::move(handle);
  EXPECT_FALSE(moved.done());
  moved.wait();
  EXPECT_EQ(waits, 3);
}

TEST(CollectiveHandle, AFailedWaitThrowsOnceAndLeavesTheHandleComplete) {
  int waits = 0;
  CollectiveHandle handle(std::make_unique<ScriptedOperation>(100, waits, true));
  EXPECT_THROW(handle.wait(), Error);
  EXPECT_TRUE(handle.done());
  handle.wait();
  EXPECT_EQ(waits, 1);
}

TEST(SelfCommunicator, AsyncCollectivesAreCompleteAtOnce) {
  auto world = world_communicator();
  ASSERT_EQ(world->size(), 1);
  std::vector<float> x{1.5f, -2.0f};
  auto reduced = world->all_reduce_async(Tensor::of(x.data(), {2}));
  EXPECT_TRUE(reduced.done());
  EXPECT_EQ(x, (std::vector<float>{1.5f, -2.0f}));

  std::vector<float> full{1, 2, 3}, part(3, 0.0f);
  const std::vector<std::int64_t> counts{3};
  auto scattered = world->reduce_scatter_async(Tensor::of(part.data(), {3}), Tensor::of(full.data(), {3}), counts);
  EXPECT_TRUE(scattered.done());
  EXPECT_EQ(part, full);
}

TEST(SelfCommunicator, ReduceScatterCountsMustMatch) {
  auto world = world_communicator();
  std::vector<float> full{1, 2, 3}, part(2, 0.0f);
  const std::vector<std::int64_t> wrong_total{2}, two_ranks{1, 2};
  EXPECT_THROW(world->reduce_scatter_async(Tensor::of(part.data(), {2}), Tensor::of(full.data(), {3}), wrong_total),
               Error);
  EXPECT_THROW(world->reduce_scatter_async(Tensor::of(part.data(), {2}), Tensor::of(full.data(), {3}), two_ranks), Error);
}

TEST(Communicator, SplitKeepsTheBackendWithoutKnowingIt) {
  auto world = world_communicator();
  auto child = world->split(0, 0, "child");
  EXPECT_EQ(child->size(), 1);
  EXPECT_EQ(child->name(), "child");
  auto grandchild = communicator_factory(CommunicatorBackend::host)->data_group(*child, 3, 0, "grandchild");
  EXPECT_EQ(grandchild->size(), 1);
  EXPECT_EQ(backend_name(CommunicatorBackend::host), "host");
}

TEST(ProcessGrid, HasControlGroupsBesideTheDataGroups) {
  auto world = world_communicator();
  ProcessGrid grid(*world, 1, 1, 1);
  EXPECT_EQ(grid.backend(), CommunicatorBackend::host);
  EXPECT_EQ(grid.control().name(), "control");
  EXPECT_EQ(grid.control_replicas().name(), "control.replicas");
  EXPECT_EQ(grid.control_pp().name(), "control.pp");
  EXPECT_NE(&grid.control_replicas(), &grid.dp());
  double counted = 7;
  grid.control_replicas().all_reduce(Tensor::of(&counted, {1}));
  EXPECT_EQ(counted, 7);
}

}  // namespace
}  // namespace kiln::parallel
