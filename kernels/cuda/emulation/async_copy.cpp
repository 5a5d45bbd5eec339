#include "kernels/cuda/emulation/async_copy.hpp"

#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/cuda/emulation/execution.hpp"
#include "kernels/cuda/emulation/runtime.hpp"
#include "kernels/cuda/emulation/warpgroup_mma.hpp"

namespace kiln::emu {

namespace {

thread_local CopyLanding pinned = CopyLanding::drawn;

bool lands_early() {
  return pinned == CopyLanding::drawn ? async_copies_land_early() : pinned == CopyLanding::early;
}

void land(const PendingCopy& copy) {
  auto* dst = static_cast<unsigned char*>(copy.shared_dst);
  std::memcpy(dst, copy.global_src, static_cast<std::size_t>(copy.src_bytes));
  std::memset(dst + copy.src_bytes, 0, static_cast<std::size_t>(copy.bytes - copy.src_bytes));
  note_generic_shared_write(dst, copy.bytes);  // wgmma may read it only after a proxy fence
}

}  // namespace

void cp_async(void* shared_dst, const void* global_src, int bytes, int src_bytes, std::source_location site) {
  if (bytes != 4 && bytes != 8 && bytes != 16)
    fail_in_kernel("cp.async copies 4, 8 or 16 bytes, not " + std::to_string(bytes), site);
  if (src_bytes < 0 || src_bytes > bytes)
    fail_in_kernel("cp.async: src-size " + std::to_string(src_bytes) + " is not in [0, " + std::to_string(bytes) + "]",
                   site);
  const auto misaligned = [bytes](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % bytes != 0; };
  if (misaligned(shared_dst) || misaligned(global_src))
    fail_in_kernel("cp.async of " + std::to_string(bytes) + " bytes needs both addresses aligned to that size", site);
  if (src_bytes > 0 && !is_kernel_accessible(global_src))
    fail_in_kernel("cp.async: the source is not device memory", site);
  AsyncCopyQueue& queue = async_copy_queue();
  const PendingCopy copy{shared_dst, global_src, bytes, src_bytes, queue.open_group};
  if (lands_early()) {
    land(copy);
  } else {
    queue.pending.push_back(copy);
  }
}

void pin_async_copy_landing(CopyLanding landing) { pinned = landing; }

void cp_async_commit_group() { ++async_copy_queue().open_group; }

void cp_async_wait_group(int newest_pending) {
  AsyncCopyQueue& queue = async_copy_queue();
  const int complete_below = queue.open_group - newest_pending;  // groups < this one land now
  std::vector<PendingCopy> still_pending;
  for (const PendingCopy& copy : queue.pending) {
    if (copy.group >= complete_below) {
      still_pending.push_back(copy);
      continue;
    }
    land(copy);
  }
  queue.pending = std::move(still_pending);
}

}  // namespace kiln::emu
