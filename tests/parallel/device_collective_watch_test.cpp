// The watchdog of collectives that finish on the GPU (parallel/device_collective_watch.hpp),
// with fences the test finishes by hand: finished ones are dropped, one that stays unfinished
// past the deadline fires the timeout once, naming the collective and its group, and a fence
// that finishes in time never fires it.
#include "parallel/device_collective_watch.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

namespace kiln::parallel {
namespace {

using namespace std::chrono_literals;

class HandFence final : public cuda_backend::DeviceFence {
 public:
  bool reached() override { return finished.load(); }
  void order_compute_after() override {}
  std::atomic<bool> finished{false};
};

struct Fired {
  std::mutex mutex;
  int times = 0;
  std::string what;
  double waited = 0.0;
};

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

TEST(DeviceCollectiveWatch, FinishedFencesAreDroppedAndNeverFire) {
  Fired fired;
  DeviceCollectiveWatch watch(0.2, [&](const std::string&, double) { ++fired.times; }, 5ms);
  auto fence = std::make_shared<HandFence>();
  watch.watch(fence, "all_reduce", "tp");
  EXPECT_EQ(watch.pending(), 1u);
  fence->finished = true;
  EXPECT_TRUE(wait_until([&] { return watch.pending() == 0; }, 2000ms));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(fired.times, 0);
}

TEST(DeviceCollectiveWatch, AnUnfinishedFenceFiresOnceNamingTheCollectiveAndGroup) {
  Fired fired;
  DeviceCollectiveWatch watch(
      0.1,
      [&](const std::string& what, double waited) {
        std::lock_guard<std::mutex> lock(fired.mutex);
        ++fired.times, fired.what = what, fired.waited = waited;
      },
      5ms);
  auto quick = std::make_shared<HandFence>(), stuck = std::make_shared<HandFence>();
  quick->finished = true;
  watch.watch(quick, "send_recv", "pp");
  watch.watch(stuck, "all_reduce_async", "dp");
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until([&] { std::lock_guard<std::mutex> lock(fired.mutex); return fired.times > 0; }, 3000ms));
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::this_thread::sleep_for(100ms);
  std::lock_guard<std::mutex> lock(fired.mutex);
  EXPECT_EQ(fired.times, 1) << "a timeout ends the job: it fires once";
  EXPECT_EQ(fired.what, "all_reduce_async on the dp group");
  EXPECT_GE(fired.waited, 0.1);
  EXPECT_GE(elapsed, 0.09) << "not before the deadline";
}

}  // namespace
}  // namespace kiln::parallel
