#pragma once
// Warpgroup tensor-core MMA (sm_90a wgmma) on the emulated device, as the PTX ISA describes
// it ("Asynchronous Warpgroup Level Matrix Multiply-Accumulate"):
//   - wgmma.fence before the first wgmma.mma_async of a thread, and again after it touched
//     registers an mma reads or writes: a missing fence is an error here (the GPU would read
//     stale registers);
//   - wgmma.mma_async m64nNk16, bf16 in, f32 accumulate: a collective of the 128 threads of a
//     warpgroup. A comes from registers (the mma.m16n8k16 A fragment of warp w's rows 16w ..
//     16w + 15) or from shared memory, B from shared memory, both through 64-bit matrix
//     descriptors in the canonical no-swizzle layout (other swizzles are refused). The product
//     is computed at issue; each thread's accumulator registers read NaN until wgmma.wait_group
//     completes its group, so a read before the wait fails the kernel's test. Consecutive mmas
//     on the same accumulator chain, as on the GPU;
//   - shared memory an mma reads must not change before its wait (checked at the first wait
//     of a thread of the warpgroup), and bytes that cp.async landed there must have been ordered
//     for the async proxy by fence.proxy.async.shared::cta of the copying thread (an error
//     otherwise);
//   - wgmma.commit_group / wgmma.wait_group N: every group but the newest N completes.
// What it cannot see: the A registers changing between issue and wait (they are read at
// issue), timing, and whether ptxas serialised the mmas.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <source_location>
#include <vector>

namespace kiln::emu {

// A decoded shared-memory matrix descriptor (PTX ISA "Matrix Descriptor Format"): the start
// address, leading and stride byte offsets, all in bytes of the shared window (here: offsets
// into the block's dynamic shared memory), and the swizzle mode (0 = none).
struct MatrixDescriptor {
  std::uint32_t start = 0, leading_bytes = 0, stride_bytes = 0;
  int swizzle = 0;
};
MatrixDescriptor decode_matrix_descriptor(std::uint64_t bits);
std::uint64_t encode_matrix_descriptor(std::uint32_t start, std::uint32_t leading_bytes, std::uint32_t stride_bytes);

// The shared-window address of p: its offset in the running block's dynamic shared memory
// (kiln's wgmma operands live there); anything else fails the kernel.
std::uint32_t shared_window_address(const void* p, std::source_location site);

struct SharedSnapshot;  // bytes an in-flight mma read, to compare at its wait

struct PendingMma {
  float* accumulator;          // the thread's N/2 registers
  std::vector<float> values;   // what they hold once the group completes
  int group;
  std::shared_ptr<const SharedSnapshot> reads;  // one per mma, shared by its 128 threads
};

// The wgmma state of one CUDA thread (in its fiber, so it ends with the block).
struct WarpgroupMmaState {
  std::vector<PendingMma> pending;
  int open_group = 0;
  bool fenced = false;  // wgmma.fence since the last access the mmas must see
  // Shared bytes this thread's cp.async landed since its last fence.proxy.async: [begin, end).
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> unfenced_copies;
};
WarpgroupMmaState& warpgroup_mma_state();  // of the running thread (execution.cpp)
void for_each_thread_warpgroup_mma_state(const std::function<void(WarpgroupMmaState&)>& visit);

struct WarpgroupMma {
  int n = 0;                           // N of m64nNk16: a multiple of 8 up to 256
  const unsigned* a_registers = nullptr;  // four bf16 pairs; null: A from a_descriptor
  std::uint64_t a_descriptor = 0;
  bool a_m_major = false;              // imm-trans-a (A from shared memory only)
  std::uint64_t b_descriptor = 0;
  bool b_n_major = false;              // imm-trans-b
  bool accumulate = true;              // scale-d: D = A B + D, or D = A B
  float* accumulator = nullptr;        // n / 2 floats
};

void wgmma_fence();
void wgmma_mma_async(const WarpgroupMma& mma, std::source_location site);
void wgmma_commit_group();
void wgmma_wait_group(int newest_pending, std::source_location site);
void fence_proxy_async_shared();
// cp.async's landing of [dst, dst + bytes) by the running thread (async_copy.cpp).
void note_generic_shared_write(const void* dst, int bytes);

}  // namespace kiln::emu
