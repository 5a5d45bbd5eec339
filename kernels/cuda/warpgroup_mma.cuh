#pragma once
// Hopper's warpgroup tensor-core MMA (wgmma, sm_90a): the 128 threads of a warpgroup (4 warps
// in a row of the block) compute D (64 x 64, f32) = A (64 x 16, bf16) B (16 x 64, bf16) + D as
// one asynchronous instruction that reads B, and A if it is not in registers, straight from
// shared memory: no ldmatrix, no B fragments in registers.
//
//   A in registers: warp w of the group holds rows 16w .. 16w + 15 as an mma.m16n8k16 A
//     fragment (MmaFragmentA); D the same per warp: eight m16n8 accumulator tiles
//     (MmaAccumulator[8]), tile t the columns 8t .. 8t + 7. So code written for mma.sync
//     fragments (softmax on scores, probabilities as the next A) works unchanged.
//   A may instead come from shared memory (K-major), through a descriptor as B does.
//   B in shared memory, described by a 64-bit matrix descriptor (shared_matrix_descriptor) in
//     the canonical no-swizzle layout: 8 x 16-byte core matrices, `leading_bytes` apart along K
//     and `stride_bytes` apart along N. K-major (kNMajor false): a core-matrix row is 8
//     consecutive k of one n; N-major: 8 consecutive n of one k.
//
// The protocol (PTX ISA, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate"):
//   cp.async ... wait; fence_shared_for_async_proxy(); __syncthreads();   (operands visible)
//   warpgroup_fence();                    before the first mma, and after touching its registers
//   warpgroup_mma(...); ...               consecutive mmas may chain on one accumulator
//   warpgroup_commit(); warpgroup_wait<0>(acc);   then acc may be read
// On the emulated device each step is checked (emulation/warpgroup_mma.hpp).
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/mma.cuh"
#if KILN_CUDA_EMULATED
#include "kernels/cuda/emulation/warpgroup_mma.hpp"
#endif

namespace kiln::KILN_CUDA_NS {

constexpr int kWarpgroupThreads = 128;
constexpr int kWarpgroupTileColumns = 64;  // N of kiln's one wgmma shape, m64n64k16
using WarpgroupAccumulator = MmaAccumulator[kWarpgroupTileColumns / 8];

__device__ __forceinline__ int warpgroup_id() { return static_cast<int>(threadIdx.x) / kWarpgroupThreads; }

#if KILN_CUDA_EMULATED

inline std::uint64_t shared_matrix_descriptor(const void* start, std::uint32_t leading_bytes, std::uint32_t stride_bytes,
                                              std::source_location site = std::source_location::current()) {
  return ::kiln::emu::encode_matrix_descriptor(::kiln::emu::shared_window_address(start, site), leading_bytes,
                                               stride_bytes);
}
inline void fence_shared_for_async_proxy() { ::kiln::emu::fence_proxy_async_shared(); }
inline void warpgroup_fence() { ::kiln::emu::wgmma_fence(); }
template <bool kNMajor>
inline void warpgroup_mma(WarpgroupAccumulator& acc, const MmaFragmentA& a, std::uint64_t b, bool accumulate,
                          std::source_location site = std::source_location::current()) {
  ::kiln::emu::WarpgroupMma mma;
  mma.n = kWarpgroupTileColumns;
  mma.a_registers = a.reg;
  mma.b_descriptor = b;
  mma.b_n_major = kNMajor;
  mma.accumulate = accumulate;
  mma.accumulator = acc[0].reg;
  ::kiln::emu::wgmma_mma_async(mma, site);
}
// ... A from shared memory too (K-major: a core-matrix row is 8 consecutive k of one m).
template <bool kNMajor>
inline void warpgroup_mma(WarpgroupAccumulator& acc, std::uint64_t a, std::uint64_t b, bool accumulate,
                          std::source_location site = std::source_location::current()) {
  ::kiln::emu::WarpgroupMma mma;
  mma.n = kWarpgroupTileColumns;
  mma.a_descriptor = a;
  mma.b_descriptor = b;
  mma.b_n_major = kNMajor;
  mma.accumulate = accumulate;
  mma.accumulator = acc[0].reg;
  ::kiln::emu::wgmma_mma_async(mma, site);
}
inline void warpgroup_commit() { ::kiln::emu::wgmma_commit_group(); }
template <int kNewestPending>
inline void warpgroup_wait(WarpgroupAccumulator&, std::source_location site = std::source_location::current()) {
  ::kiln::emu::wgmma_wait_group(kNewestPending, site);
}
inline void warpgroup_keep_registers(WarpgroupAccumulator&) {}
inline void warpgroup_keep_fragment(MmaFragmentA&) {}

#else

__device__ __forceinline__ std::uint64_t shared_matrix_descriptor(const void* start, std::uint32_t leading_bytes,
                                                                  std::uint32_t stride_bytes) {
  const auto field = [](std::uint32_t x) { return static_cast<std::uint64_t>((x & 0x3FFFFu) >> 4); };
  const auto address = static_cast<std::uint32_t>(__cvta_generic_to_shared(start));
  return field(address) | field(leading_bytes) << 16 | field(stride_bytes) << 32;  // swizzle 0: none
}

// The compiler must neither read the accumulators before the wait nor move their last writes
// past the fence: an empty asm that "changes" every register pins them in place (volatile asm
// statements keep their order).
__device__ __forceinline__ void warpgroup_keep_registers(WarpgroupAccumulator& acc) {
  KILN_UNROLL
  for (int t = 0; t < kWarpgroupTileColumns / 8; ++t)
    asm volatile("" : "+f"(acc[t].reg[0]), "+f"(acc[t].reg[1]), "+f"(acc[t].reg[2]), "+f"(acc[t].reg[3])::"memory");
}

// ... and an A fragment's registers, written before the wgmma.fence that orders them.
__device__ __forceinline__ void warpgroup_keep_fragment(MmaFragmentA& a) {
  asm volatile("" : "+r"(a.reg[0]), "+r"(a.reg[1]), "+r"(a.reg[2]), "+r"(a.reg[3])::"memory");
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void fence_shared_for_async_proxy() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void warpgroup_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void warpgroup_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kNewestPending>
__device__ __forceinline__ void warpgroup_wait(WarpgroupAccumulator& acc) {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kNewestPending) : "memory");
  warpgroup_keep_registers(acc);
}

#define KILN_WGMMA_TILE(t) "+f"(acc[t].reg[0]), "+f"(acc[t].reg[1]), "+f"(acc[t].reg[2]), "+f"(acc[t].reg[3])
template <bool kNMajor>
__device__ __forceinline__ void warpgroup_mma(WarpgroupAccumulator& acc, const MmaFragmentA& a, std::uint64_t b,
                                              bool accumulate) {
  asm volatile(
      "{\n"
      ".reg .pred accumulate;\n"
      "setp.ne.b32 accumulate, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, accumulate, 1, 1, %38;\n"
      "}\n"
      : KILN_WGMMA_TILE(0), KILN_WGMMA_TILE(1), KILN_WGMMA_TILE(2), KILN_WGMMA_TILE(3), KILN_WGMMA_TILE(4),
        KILN_WGMMA_TILE(5), KILN_WGMMA_TILE(6), KILN_WGMMA_TILE(7)
      : "r"(a.reg[0]), "r"(a.reg[1]), "r"(a.reg[2]), "r"(a.reg[3]), "l"(b), "r"(static_cast<int>(accumulate)),
        "n"(static_cast<int>(kNMajor)));
}
template <bool kNMajor>
__device__ __forceinline__ void warpgroup_mma(WarpgroupAccumulator& acc, std::uint64_t a, std::uint64_t b,
                                              bool accumulate) {
  asm volatile(
      "{\n"
      ".reg .pred accumulate;\n"
      "setp.ne.b32 accumulate, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "%32, %33, accumulate, 1, 1, 0, %35;\n"
      "}\n"
      : KILN_WGMMA_TILE(0), KILN_WGMMA_TILE(1), KILN_WGMMA_TILE(2), KILN_WGMMA_TILE(3), KILN_WGMMA_TILE(4),
        KILN_WGMMA_TILE(5), KILN_WGMMA_TILE(6), KILN_WGMMA_TILE(7)
      : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)), "n"(static_cast<int>(kNMajor)));
}
#undef KILN_WGMMA_TILE
#else
// Built for an architecture without wgmma (anything but sm_90a): the wgmma kernels are never
// launched there (flash_attention_wgmma_built() is false), so these only have to compile.
__device__ __forceinline__ void fence_shared_for_async_proxy() { __trap(); }
__device__ __forceinline__ void warpgroup_fence() { __trap(); }
__device__ __forceinline__ void warpgroup_commit() { __trap(); }
template <int kNewestPending>
__device__ __forceinline__ void warpgroup_wait(WarpgroupAccumulator&) {
  __trap();
}
template <bool kNMajor>
__device__ __forceinline__ void warpgroup_mma(WarpgroupAccumulator&, const MmaFragmentA&, std::uint64_t, bool) {
  __trap();
}
template <bool kNMajor>
__device__ __forceinline__ void warpgroup_mma(WarpgroupAccumulator&, std::uint64_t, std::uint64_t, bool) {
  __trap();
}
#endif

#endif

}  // namespace kiln::KILN_CUDA_NS
