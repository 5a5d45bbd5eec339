#pragma once
// The emulated CUDA execution model (kernels/cuda/emulation/README.md).
//
// A launch runs its blocks one after another, in an order shuffled from a seed, on the OS
// thread that launched it. Inside a block every CUDA thread is a fiber (ucontext) with its own
// stack; a fiber runs until it reaches a synchronisation point (__syncthreads, a warp
// collective, __activemask) or returns, and the fibers that can run are resumed in a freshly
// shuffled order each round. So between two barriers the threads of a block run in an order
// no kernel may rely on, and a missing barrier shows up as a wrong result. Fibers rather than
// OS threads: a block of 1024 threads switches at every barrier, which costs a few hundred
// nanoseconds per fiber here and milliseconds with 1024 OS threads on two cores, and fibers
// make the schedule (and so every test) reproducible from the seed.
//
// Errors a GPU would hang or silently corrupt on (a __syncthreads some threads skip, a warp
// collective whose mask a lane is not in, masks that disagree, a deadlock) throw kiln::Error
// from the launch, naming the kernel, the thread and the source line.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <source_location>
#include <string>

#include "kernels/cuda/emulation/types.hpp"

namespace kiln::emu {

inline constexpr int warpSize = 32;
inline constexpr unsigned kMaxThreadsPerBlock = 1024;

// The built-in index variables of the running CUDA thread; the scheduler sets them at every
// switch. Fibers of one block share the OS thread, hence thread_local rather than global.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

struct GridShape {
  const char* kernel = "";
  dim3 grid;
  dim3 block;
  std::size_t dynamic_shared_bytes = 0;
};

// Runs `body` once per CUDA thread of the grid (the launch checks are done by the caller,
// launch.hpp). Throws kiln::Error for an execution error, naming shape.kernel.
void run_grid(const GridShape& shape, const std::function<void()>& body);

// The dynamic shared memory of the running block (the launch's size; filled with 0xFF at
// block start, so an uninitialised float reads NaN and an int -1).
unsigned char* dynamic_shared_memory();
std::size_t dynamic_shared_size();

// Block barrier with an optional predicate reduction: returns how many threads passed a
// non-zero predicate.
int block_barrier(int predicate, const char* what, std::source_location site);

// One lane's part of a warp collective. The last lane of the mask to arrive calls
// `combine(lanes, mask)`, which reads every lane's input and writes every lane's output.
struct LaneSlot {
  const void* in = nullptr;
  void* out = nullptr;
  int arg = 0;
  int width = warpSize;
};
using WarpCombine = void (*)(LaneSlot* lanes, unsigned mask, const char* what);
void warp_collective(unsigned mask, const char* what, WarpCombine combine, LaneSlot slot,
                     std::source_location site);

// One thread's part of a warpgroup collective (wgmma.mma_async): the 128 threads of the
// caller's warpgroup (linear thread index / 128) all make the same call; the last to arrive
// calls `combine(threads)` with threads[i] the slot of thread 128 * group + i. A block whose
// size is not a whole number of warpgroups, a thread of the group that has returned, or one
// waiting in another warpgroup call is an error naming the kernel, thread and line.
inline constexpr int kWarpgroupThreads = 128;
using WarpgroupCombine = void (*)(LaneSlot* threads, const char* what);
void warpgroup_collective(const char* what, WarpgroupCombine combine, LaneSlot slot, std::source_location site);

// The lanes of the calling warp that reach this same __activemask call before anything else
// can run (the emulator's model of convergence).
unsigned active_mask(std::source_location site);

unsigned lane_id();  // linear thread index % 32 of the running CUDA thread

// Fails the running launch with kiln::Error naming the kernel, the thread and `site`.
[[noreturn]] void fail_in_kernel(const std::string& message, std::source_location site);

// The seed of the block order and thread schedule (default fixed; KILN_EMU_SEED overrides).
void set_schedule_seed(std::uint64_t seed);
std::uint64_t schedule_seed();

}  // namespace kiln::emu
