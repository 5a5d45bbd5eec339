#pragma once
// Asynchronous global -> shared copies (cp.async, sm_80+): a thread issues 16-byte copies that
// complete in the background, closes them into a group (commit), and waits until all but its
// newest N groups have landed (wait_group N); a __syncthreads after the wait makes every
// thread's copies visible to the block. So the next tile streams into a second buffer while
// the block computes on the first. On the emulated device the copies land at the wait
// (emulation/async_copy.hpp), so a read before it sees the old bytes.
#include "kernels/cuda/cuda_compat.cuh"

#if KILN_CUDA_EMULATED
#include <source_location>

#include "kernels/cuda/emulation/async_copy.hpp"
#endif

namespace kiln::KILN_CUDA_NS {

#if KILN_CUDA_EMULATED
// 16 bytes from global `src` to shared `dst`, or 16 zero bytes when !fill (src unread).
inline void async_copy_16(void* dst, const void* src, bool fill,
                          std::source_location site = std::source_location::current()) {
  ::kiln::emu::cp_async(dst, src, 16, fill ? 16 : 0, site);
}
inline void async_copy_commit() { ::kiln::emu::cp_async_commit_group(); }
template <int kNewestPending>
inline void async_copy_wait() {
  ::kiln::emu::cp_async_wait_group(kNewestPending);
}
#else
__device__ __forceinline__ void async_copy_16(void* dst, const void* src, bool fill) {
  const unsigned shared_address = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const int src_bytes = fill ? 16 : 0;  // cp.async zero-fills the bytes past src-size
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void async_copy_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kNewestPending>
__device__ __forceinline__ void async_copy_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kNewestPending) : "memory");
}
#endif

}  // namespace kiln::KILN_CUDA_NS
