#include "kernels/cuda/emulation/execution.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/cuda/emulation/async_copy.hpp"
#include "kernels/cuda/emulation/fiber_context.hpp"
#include "kernels/cuda/emulation/warpgroup_mma.hpp"
#include "trainer/core/error.hpp"

namespace kiln::emu {
namespace {

// 128 KiB of stack per CUDA thread: kernels keep a few registers' worth of locals, and the
// failure path formats a message (fmt) and unwinds. A guard page below each stack turns an
// overflow into a crash at the spot instead of silent corruption of the neighbour.
constexpr std::size_t kStackBytes = 128 * 1024;
// A legal grid may have 2^31 blocks; the emulator keeps one shuffled index per block, and a
// test that large would run for hours anyway.
constexpr std::uint64_t kMaxEmulatedBlocks = std::uint64_t{1} << 22;

enum class State { Runnable, AtBarrier, AtWarp, AtWarpgroup, AtActiveMask, Done };

struct Fiber {
  FiberContext context;
  uint3 index;
  unsigned linear = 0;
  State state = State::Done;
  std::source_location site;  // where it waits
  const char* what = "";      // the call it waits in
  int predicate = 0;
  int result = 0;             // barrier count or active mask handed back on release
  unsigned mask = 0;          // warp collective mask
  WarpCombine combine = nullptr;
  WarpgroupCombine group_combine = nullptr;
  LaneSlot slot;
  AsyncCopyQueue async_copies;     // cp.async issued and not yet waited for
  WarpgroupMmaState warpgroup_mma;  // wgmma issued and not yet waited for, fences
};

class StackPool {
 public:
  StackPool() {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    stride_ = kStackBytes + page;
    bytes_ = stride_ * kMaxThreadsPerBlock;
    void* memory = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) kiln::fail("CUDA emulation: cannot map {} bytes of fiber stacks", bytes_);
    base_ = static_cast<unsigned char*>(memory);
    for (unsigned i = 0; i < kMaxThreadsPerBlock; ++i) mprotect(base_ + i * stride_, page, PROT_NONE);
    page_ = page;
  }
  ~StackPool() { munmap(base_, bytes_); }
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  void* stack(unsigned thread) const { return base_ + thread * stride_ + page_; }

 private:
  unsigned char* base_ = nullptr;
  std::size_t bytes_ = 0, stride_ = 0, page_ = 0;
};

struct Block {
  const GridShape* shape = nullptr;
  const std::function<void()>* body = nullptr;
  std::vector<Fiber> fibers;
  std::vector<unsigned> ready, ready_next;
  FiberContext scheduler;
  Fiber* current = nullptr;
  std::exception_ptr failure;
  std::vector<unsigned char> shared;
  std::mt19937_64 random;
  bool async_copies_land_early = false;  // drawn per block (async_copy.hpp)
  int lagging_warp = -1;                  // drawn per block: a warp that runs last (draw_paused_warps)
};

thread_local Block* running_block = nullptr;
thread_local std::unique_ptr<StackPool> stacks;

std::uint64_t initial_seed() {
  const char* text = std::getenv("KILN_EMU_SEED");
  return text ? std::strtoull(text, nullptr, 10) : 0x6b696c6eull;  // "kiln"
}
std::uint64_t seed = initial_seed();
thread_local std::uint64_t launches = 0;

Block& block() { return *running_block; }

std::string thread_name(const Fiber& fiber) {
  return fmt::format("thread ({},{},{}) of block ({},{},{})", fiber.index.x, fiber.index.y, fiber.index.z,
                     blockIdx.x, blockIdx.y, blockIdx.z);
}

std::string where(std::source_location site) { return fmt::format("{}:{}", site.file_name(), site.line()); }

[[noreturn]] void fail_block(const std::string& message) {
  kiln::fail("CUDA emulation: kernel {}: {}", block().shape->kernel, message);
}

void fiber_main() {
  Block& b = block();
  Fiber& fiber = *b.current;
  try {
    (*b.body)();
  } catch (const kiln::Error& error) {
    // Errors raised below the kernel (a warp collective's checks) gain the kernel and thread.
    const std::string_view message = error.what();
    b.failure = message.starts_with("CUDA emulation: kernel ")
                    ? std::current_exception()
                    : std::make_exception_ptr(kiln::Error(fmt::format("CUDA emulation: kernel {}: {}: {}", b.shape->kernel,
                                                                      thread_name(fiber), message)));
  } catch (...) {
    b.failure = std::current_exception();
  }
  fiber.state = State::Done;
  switch_context(fiber.context, b.scheduler);  // for good: nothing resumes a finished fiber
}

// Parks the running fiber until the scheduler releases it.
void park(State state, const char* what, std::source_location site) {
  Block& b = block();
  Fiber& fiber = *b.current;
  fiber.state = state;
  fiber.what = what;
  fiber.site = site;
  switch_context(fiber.context, b.scheduler);
}

void release(Fiber& fiber, int result) {
  fiber.state = State::Runnable;
  fiber.result = result;
  block().ready_next.push_back(fiber.linear);
}

void resume(Block& b, Fiber& fiber) {
  b.current = &fiber;
  threadIdx = fiber.index;
  switch_context(b.scheduler, fiber.context);
  b.current = nullptr;
  if (b.failure) std::rethrow_exception(b.failure);
}

void start_fibers(Block& b, unsigned count) {
  b.fibers.assign(count, Fiber{});
  b.ready.clear();
  b.ready_next.clear();
  const dim3 shape = b.shape->block;
  for (unsigned linear = 0; linear < count; ++linear) {
    Fiber& fiber = b.fibers[linear];
    fiber.linear = linear;
    fiber.index = {linear % shape.x, (linear / shape.x) % shape.y, linear / (shape.x * shape.y)};
    fiber.state = State::Runnable;
    fiber.context.prepare(stacks->stack(linear), kStackBytes, fiber_main);
    b.ready_next.push_back(linear);
  }
}

// __activemask: the lanes of one warp waiting at the same call form the mask.
bool release_active_masks(Block& b) {
  bool released = false;
  for (Fiber& fiber : b.fibers) {
    if (fiber.state != State::AtActiveMask) continue;
    const unsigned warp = fiber.linear / warpSize;
    unsigned mask = 0;
    std::vector<Fiber*> group;
    for (unsigned lane = 0; lane < warpSize && warp * warpSize + lane < b.fibers.size(); ++lane) {
      Fiber& other = b.fibers[warp * warpSize + lane];
      if (other.state == State::AtActiveMask && other.site.line() == fiber.site.line() &&
          std::strcmp(other.site.file_name(), fiber.site.file_name()) == 0) {
        mask |= 1u << lane;
        group.push_back(&other);
      }
    }
    for (Fiber* member : group) release(*member, static_cast<int>(mask));
    released = true;
  }
  return released;
}

bool release_barrier(Block& b) {
  const Fiber* first = nullptr;
  const Fiber* exited = nullptr;
  int passed = 0;
  for (const Fiber& fiber : b.fibers) {
    if (fiber.state == State::Done) {
      if (!exited) exited = &fiber;
      continue;
    }
    if (fiber.state != State::AtBarrier) return false;
    if (!first) first = &fiber;
    if (fiber.site.line() != first->site.line() || std::strcmp(fiber.site.file_name(), first->site.file_name()) != 0)
      fail_block(fmt::format("divergent {}: {} waits at {} but {} waits at {} (every thread of a block must reach the same barrier)",
                             first->what, thread_name(*first), where(first->site), thread_name(fiber), where(fiber.site)));
    passed += fiber.predicate != 0;
  }
  if (!first) return false;
  if (exited)
    fail_block(fmt::format("divergent {} at {}: {} returned without reaching it while {} waits (every thread of a block must reach every barrier)",
                           first->what, where(first->site), thread_name(*exited), thread_name(*first)));
  for (Fiber& fiber : b.fibers) release(fiber, passed);
  return true;
}

// Lists each distinct place threads wait at, with how many wait there and the first of them.
[[noreturn]] void fail_deadlock(const Block& b) {
  for (const Fiber& fiber : b.fibers) {  // the likeliest cause: a lane of a mask has returned
    if (fiber.state != State::AtWarp) continue;
    const unsigned first_lane = fiber.linear - fiber.linear % warpSize;
    for (unsigned lane = 0; lane < warpSize; ++lane)
      if ((fiber.mask >> lane & 1u) && b.fibers[first_lane + lane].state == State::Done)
        fail_block(fmt::format("{} at {}: {} with mask 0x{:08x} waits for lane {}, which has already returned",
                               thread_name(fiber), where(fiber.site), fiber.what, fiber.mask, lane));
  }
  struct Wait {
    const Fiber* first;
    int threads;
  };
  std::vector<Wait> waits;
  for (const Fiber& fiber : b.fibers) {
    if (fiber.state == State::Done) continue;
    auto same = std::find_if(waits.begin(), waits.end(), [&](const Wait& wait) {
      return wait.first->what == fiber.what && wait.first->site.line() == fiber.site.line() &&
             std::strcmp(wait.first->site.file_name(), fiber.site.file_name()) == 0;
    });
    if (same == waits.end())
      waits.push_back({&fiber, 1});
    else
      ++same->threads;
  }
  std::string text;
  for (const Wait& wait : waits)
    text += fmt::format("{}{} thread(s) wait in {} at {}, the first {}", text.empty() ? "" : "; ", wait.threads,
                        wait.first->what, where(wait.first->site), thread_name(*wait.first));
  fail_block("deadlock: no thread can continue (" + text + ")");
}

// Warps that sit out this round (bit w % 32 for warp w): each of them with probability 1/2,
// never all of them. So warps drift apart between barriers by whole collectives, as they do on
// the GPU, instead of marching in step, and a race between warps inside a barrier interval
// (one warp staging into a buffer another still reads) gets a chance to show. In half the
// blocks one warp lags: it runs only when no other warp can, so the others get as far ahead of
// it as the barriers allow (a race that needs a long drift, such as a copy into a stage whose
// asynchronous reads a slow warpgroup has not waited for yet).
std::uint32_t draw_paused_warps(Block& b) {
  std::uint32_t ready_warps = 0;
  for (unsigned linear : b.ready) ready_warps |= 1u << (linear / warpSize % 32);
  if (std::popcount(ready_warps) < 2) return 0;
  const std::uint32_t lagging = b.lagging_warp >= 0 ? 1u << (b.lagging_warp % 32) : 0u;
  const auto paused = (static_cast<std::uint32_t>(b.random()) | lagging) & ready_warps;
  return paused == ready_warps ? (lagging & ready_warps ? lagging : 0) : paused;
}

void run_block(Block& b, unsigned threads) {
  start_fibers(b, threads);
  for (;;) {
    if (b.ready_next.empty() && !release_active_masks(b) && !release_barrier(b)) {
      if (std::all_of(b.fibers.begin(), b.fibers.end(), [](const Fiber& f) { return f.state == State::Done; })) return;
      fail_deadlock(b);
    }
    std::swap(b.ready, b.ready_next);
    b.ready_next.clear();
    std::shuffle(b.ready.begin(), b.ready.end(), b.random);
    const std::uint32_t paused_warps = draw_paused_warps(b);
    for (unsigned linear : b.ready) {
      Fiber& fiber = b.fibers[linear];
      if (fiber.state != State::Runnable) continue;
      if (paused_warps >> (linear / warpSize % 32) & 1u) {
        b.ready_next.push_back(linear);  // this warp sits the round out
        continue;
      }
      resume(b, fiber);
    }
  }
}

std::vector<std::uint64_t> shuffled_block_order(std::uint64_t blocks, std::mt19937_64& random) {
  std::vector<std::uint64_t> order(blocks);
  std::iota(order.begin(), order.end(), std::uint64_t{0});
  std::shuffle(order.begin(), order.end(), random);
  return order;
}

}  // namespace

void set_schedule_seed(std::uint64_t value) { seed = value; }
std::uint64_t schedule_seed() { return seed; }

void run_grid(const GridShape& shape, const std::function<void()>& body) {
  if (running_block) kiln::fail("CUDA emulation: kernel {} launched from inside kernel {} (dynamic parallelism is not emulated)",
                                shape.kernel, running_block->shape->kernel);
  if (!stacks) stacks = std::make_unique<StackPool>();
  Block b;
  b.shape = &shape;
  b.body = &body;
  b.random.seed(seed ^ (0x9e3779b97f4a7c15ull * ++launches));
  const unsigned threads = shape.block.x * shape.block.y * shape.block.z;
  const std::uint64_t blocks = std::uint64_t{shape.grid.x} * shape.grid.y * shape.grid.z;
  if (blocks > kMaxEmulatedBlocks)
    kiln::fail("CUDA emulation: kernel {}: grid of {} blocks; the emulator runs at most {} (test with smaller shapes)",
               shape.kernel, blocks, kMaxEmulatedBlocks);
  blockDim = shape.block;
  gridDim = shape.grid;
  running_block = &b;
  struct Reset {
    ~Reset() { running_block = nullptr; }
  } reset;
  for (std::uint64_t linear : shuffled_block_order(blocks, b.random)) {
    blockIdx = {static_cast<unsigned>(linear % shape.grid.x), static_cast<unsigned>((linear / shape.grid.x) % shape.grid.y),
                static_cast<unsigned>(linear / (std::uint64_t{shape.grid.x} * shape.grid.y))};
    b.shared.assign(shape.dynamic_shared_bytes, 0xFF);
    b.async_copies_land_early = (b.random() & 1) != 0;
    const unsigned warps = (threads + warpSize - 1) / warpSize;
    b.lagging_warp = warps > 1 && (b.random() & 1) != 0 ? static_cast<int>(b.random() % warps) : -1;
    run_block(b, threads);
  }
}

unsigned char* dynamic_shared_memory() { return block().shared.data(); }
std::size_t dynamic_shared_size() { return block().shared.size(); }

int block_barrier(int predicate, const char* what, std::source_location site) {
  Fiber& fiber = *block().current;
  fiber.predicate = predicate;
  park(State::AtBarrier, what, site);
  return fiber.result;
}

unsigned lane_id() { return block().current->linear % warpSize; }

AsyncCopyQueue& async_copy_queue() { return block().current->async_copies; }

WarpgroupMmaState& warpgroup_mma_state() { return block().current->warpgroup_mma; }

void for_each_thread_warpgroup_mma_state(const std::function<void(WarpgroupMmaState&)>& visit) {
  for (Fiber& fiber : block().fibers) visit(fiber.warpgroup_mma);
}

bool async_copies_land_early() { return block().async_copies_land_early; }

[[noreturn]] void fail_in_kernel(const std::string& message, std::source_location site) {
  fail_block(fmt::format("{} at {}: {}", thread_name(*block().current), where(site), message));
}

namespace {

std::string mask_text(unsigned mask) { return fmt::format("0x{:08x}", mask); }

// Checks the caller's mask against the warp: the caller is in it, every lane of it exists and
// has not exited, and no lane already waiting in a collective overlaps it with another mask.
void check_warp_mask(const Block& b, const Fiber& self, unsigned mask, const char* what, std::source_location site) {
  const unsigned lane = self.linear % warpSize;
  const unsigned first = self.linear - lane;
  if (!(mask >> lane & 1u))
    fail_in_kernel(fmt::format("lane {} calls {} with mask {}, which does not include it", lane, what, mask_text(mask)), site);
  for (unsigned other = 0; other < warpSize; ++other) {
    if (!(mask >> other & 1u)) continue;
    if (first + other >= b.fibers.size())
      fail_in_kernel(fmt::format("{} with mask {} names lane {}, but this warp has only {} threads",
                                 what, mask_text(mask), other, b.fibers.size() - first), site);
    const Fiber& peer = b.fibers[first + other];
    if (peer.state == State::Done)
      fail_in_kernel(fmt::format("{} with mask {} waits for lane {}, which has already returned", what, mask_text(mask), other), site);
  }
  for (unsigned other = 0; other < warpSize && first + other < b.fibers.size(); ++other) {
    const Fiber& peer = b.fibers[first + other];
    if (peer.state != State::AtWarp || !(peer.mask & mask)) continue;
    if (peer.mask != mask || peer.combine != self.combine || std::strcmp(peer.what, what) != 0)
      fail_in_kernel(fmt::format("lane {} calls {} with mask {} while lane {} waits in {} with mask {} at {} (the lanes of a "
                                 "mask must all make the same call with the same mask)",
                                 lane, what, mask_text(mask), other, peer.what, mask_text(peer.mask), where(peer.site)),
                     site);
  }
}

}  // namespace

void warp_collective(unsigned mask, const char* what, WarpCombine combine, LaneSlot slot, std::source_location site) {
  Block& b = block();
  Fiber& self = *b.current;
  self.combine = combine;
  check_warp_mask(b, self, mask, what, site);
  self.mask = mask;
  self.slot = slot;
  const unsigned first = self.linear - self.linear % warpSize;
  unsigned arrived = 1u << (self.linear % warpSize);
  for (unsigned other = 0; other < warpSize && first + other < b.fibers.size(); ++other)
    if (b.fibers[first + other].state == State::AtWarp && (b.fibers[first + other].mask & mask)) arrived |= 1u << other;
  if (arrived != mask) {
    park(State::AtWarp, what, site);
    return;  // the last lane combined for us
  }
  LaneSlot lanes[warpSize];
  for (unsigned other = 0; other < warpSize; ++other)
    if (mask >> other & 1u) lanes[other] = b.fibers[first + other].slot;
  combine(lanes, mask, what);
  for (unsigned other = 0; other < warpSize; ++other) {
    Fiber& peer = b.fibers[first + other];
    if ((mask >> other & 1u) && &peer != &self) release(peer, 0);
  }
  self.state = State::Runnable;
}

void warpgroup_collective(const char* what, WarpgroupCombine combine, LaneSlot slot, std::source_location site) {
  Block& b = block();
  Fiber& self = *b.current;
  if (b.fibers.size() % kWarpgroupThreads != 0)
    fail_in_kernel(fmt::format("{} needs whole warpgroups, but the block has {} threads (not a multiple of {})", what,
                               b.fibers.size(), kWarpgroupThreads),
                   site);
  const unsigned first = self.linear - self.linear % kWarpgroupThreads;
  int arrived = 1;
  for (unsigned other = first; other < first + kWarpgroupThreads; ++other) {
    const Fiber& peer = b.fibers[other];
    if (&peer == &self) continue;
    if (peer.state == State::Done)
      fail_in_kernel(fmt::format("{}: thread {} of this warpgroup has already returned", what, other), site);
    if (peer.state != State::AtWarpgroup) continue;
    if (peer.group_combine != combine || std::strcmp(peer.what, what) != 0)
      fail_in_kernel(fmt::format("{} while thread {} of this warpgroup waits in {} at {} (a warpgroup must make the same "
                                 "call together)",
                                 what, other, peer.what, where(peer.site)),
                     site);
    ++arrived;
  }
  self.group_combine = combine;
  self.slot = slot;
  if (arrived != kWarpgroupThreads) {
    park(State::AtWarpgroup, what, site);
    return;  // the last thread combined for us
  }
  LaneSlot threads[kWarpgroupThreads];
  for (unsigned i = 0; i < kWarpgroupThreads; ++i) threads[i] = b.fibers[first + i].slot;
  combine(threads, what);
  for (unsigned other = first; other < first + kWarpgroupThreads; ++other)
    if (&b.fibers[other] != &self) release(b.fibers[other], 0);
  self.state = State::Runnable;
}

unsigned active_mask(std::source_location site) {
  Fiber& fiber = *block().current;
  park(State::AtActiveMask, "__activemask", site);
  return static_cast<unsigned>(fiber.result);
}

}  // namespace kiln::emu
