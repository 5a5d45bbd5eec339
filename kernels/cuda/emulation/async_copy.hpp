#pragma once
// cp.async on the emulated device: global -> shared copies that land at one of the two ends of
// the window the PTX ISA allows, drawn per block from the schedule seed:
//   - late, when the issuing thread waits for their group (cp.async.wait_group): a kernel that
//     reads its staging buffer before the wait (or, for another thread's copies, before the
//     barrier after that thread's wait) reads what the buffer held before (the 0xFF poison of
//     dynamic shared memory, or the previous tile) and its test fails;
//   - early, when they are issued: a kernel that issues the next tile's copies into a buffer
//     other threads may still be reading (a missing barrier after the reads) corrupts them.
// What stays unseen: landings in between, and copies that overlap partially in time.
#include <cstddef>
#include <source_location>
#include <vector>

namespace kiln::emu {

struct PendingCopy {
  void* shared_dst;
  const void* global_src;
  int bytes;      // copied: 4, 8 or 16
  int src_bytes;  // read from src; the rest of the bytes are zero-filled
  int group;      // the commit group it belongs to
};

// The cp.async state of one CUDA thread (kept in its fiber, so it ends with the block).
struct AsyncCopyQueue {
  std::vector<PendingCopy> pending;
  int open_group = 0;  // the group the next copy joins; commit closes it
};
AsyncCopyQueue& async_copy_queue();  // of the running CUDA thread (execution.cpp)
bool async_copies_land_early();      // this block's draw (execution.cpp)

// cp.async.cg/ca.shared.global [dst], [src], bytes, src_bytes
void cp_async(void* shared_dst, const void* global_src, int bytes, int src_bytes, std::source_location site);
// Tests pin the landing to show each kind of bug; `drawn` (the default) draws per block.
enum class CopyLanding { drawn, early, late };
void pin_async_copy_landing(CopyLanding landing);

// cp.async.commit_group
void cp_async_commit_group();
// cp.async.wait_group n: every group but the newest `newest_pending` committed ones is complete.
void cp_async_wait_group(int newest_pending);

}  // namespace kiln::emu
