#pragma once
// What the wgmma attention kernels share (flash_attention_wgmma.cu, the forward;
// flash_attention_wgmma_backward.cu, dq and dk/dv): tiles of 64 rows x head dim kD in the
// canonical no-swizzle layout of wgmma's shared-memory descriptors (8 x 8 core matrices of 128
// contiguous bytes, core (i, j) of rows 8i.., columns 8j.. at byte 128 (i kD / 8 + j)), their
// staging by cp.async, and the descriptors of a tile as either side of a product. A warp's
// 16-byte copies fill 512 consecutive bytes, so staging has no bank conflicts, and a core matrix
// sits on all 32 banks for the tensor cores' reads.
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/flash_attention_tiles.cuh"
#include "kernels/cuda/warpgroup_mma.cuh"

namespace kiln::KILN_CUDA_NS::flash_detail {

constexpr int kWarpgroupRows = 64;  // M of wgmma.m64n64k16
constexpr std::uint32_t kCoreBytes = 128;
constexpr int kStages = 3;  // K/V stages of the walks over key tiles (forward, dq)

// A 64-row tile of head dim kD in core matrices.
template <int kD>
struct CoreTile {
  static constexpr int kElements = kTileRows * kD;
  static constexpr int kCoreColumns = kD / 8;
  static constexpr std::uint32_t kRowGroupBytes = kCoreColumns * kCoreBytes;  // from rows 8i.. to 8i + 8..
};

// Rows t0 .. t0 + kRows - 1 of head h of x into core matrices by cp.async (the layout of
// CoreTile, kRows rows), thread e (and e + kThreads, ...) copying the e-th 16 bytes; rows r >= n
// are zero-filled, their source unread. The caller commits the group.
template <int kD, int kThreads, int kRows = kTileRows>
__device__ void stage_core_tile(bf16* dst, const HeadTensor<const bf16>& x, int64_t b, int64_t t0, int64_t n,
                                int64_t h) {
  using Layout = CoreTile<kD>;
  for (int e = static_cast<int>(threadIdx.x); e < kRows * kD / 8; e += kThreads) {
    const int core = e / 8, r = core / Layout::kCoreColumns * 8 + e % 8, word = core % Layout::kCoreColumns;
    const bool real = r < n;
    async_copy_16(dst + 8 * e, x.row(b, real ? t0 + r : t0, h) + 8 * word, real);
  }
}

// The rows from t0 of two tensors (k and v, or q and dout) into stage `stage` (first, then
// second), as one cp.async group.
template <int kD, int kThreads>
__device__ void stage_tile_pair(bf16* tiles, int stage, const HeadTensor<const bf16>& first,
                                const HeadTensor<const bf16>& second, int64_t b, int64_t t0, int64_t n, int64_t h) {
  bf16* const first_tile = tiles + 2 * stage * CoreTile<kD>::kElements;
  stage_core_tile<kD, kThreads>(first_tile, first, b, t0, n, h);
  stage_core_tile<kD, kThreads>(first_tile + CoreTile<kD>::kElements, second, b, t0, n, h);
  async_copy_commit();
}
// k and v of the key tile from k0.
template <int kD, int kThreads>
__device__ void stage_key_tile(bf16* tiles, int stage, const AttentionShape& shape, const HeadTensor<const bf16>& k,
                               const HeadTensor<const bf16>& v, int64_t b, int64_t kv_head, int64_t k0) {
  stage_tile_pair<kD, kThreads>(tiles, stage, k, v, b, k0, smaller(kTileRows, shape.tk - k0), kv_head);
}

// This thread's copies of the current tile have landed (the next stays in flight); its bytes
// are ordered for the tensor cores' async proxy, and the barrier makes every thread's visible.
__device__ __forceinline__ void wait_for_tile_for_wgmma(bool next_in_flight) {
  wait_for_own_copies(next_in_flight);
  fence_shared_for_async_proxy();
  __syncthreads();
}

// Key tile `tile` of a walk over key_tiles tiles from first_key, ready for wgmma: issues the
// copy of the next tile into its stage (the stage the walk read two tiles ago, which every
// thread finished before the previous tile's barrier), waits for this one.
template <int kD, int kThreads>
__device__ KeyTile next_key_tile_for_wgmma(bf16* tiles, int64_t tile, int64_t key_tiles, int64_t first_key,
                                           const AttentionShape& shape, const HeadTensor<const bf16>& k,
                                           const HeadTensor<const bf16>& v, int64_t b, int64_t kv_head) {
  const int64_t k0 = first_key + tile * kTileRows;
  const bool next = tile + 1 < key_tiles;
  if (next)
    stage_key_tile<kD, kThreads>(tiles, static_cast<int>((tile + 1) % kStages), shape, k, v, b, kv_head,
                                 k0 + kTileRows);
  wait_for_tile_for_wgmma(next);
  const bf16* const k_tile = tiles + 2 * (tile % kStages) * CoreTile<kD>::kElements;
  return {k0, k_tile, k_tile + CoreTile<kD>::kElements};
}

// The 64 rows from `rows` (a core tile) as the M or N side of a product over the head dim, at
// its k-step s (d = 16s ..): K-major, rows 8 to a row group (stride bytes apart), K = d (core
// columns 2s, 2s + 1, leading bytes apart). B of S = Q K^T (k rows), A or B of K Q^T, dO V^T.
template <int kD>
__device__ __forceinline__ std::uint64_t operand_over_head_dim(const bf16* rows, int s) {
  return shared_matrix_descriptor(rows + 2 * s * kCoreBytes / sizeof(bf16), kCoreBytes, CoreTile<kD>::kRowGroupBytes);
}
// A tile's rows as the K side of a product whose N is the head dim, at k-step j (rows 16j ..,
// row groups 2j, 2j + 1, leading bytes apart) and output chunk c (d = 64c .., core columns 8c ..
// 8c + 7, stride bytes apart): N-major. B of O += P V (v), dQ += dS K (k), dV += P^T dO (dout),
// dK += dS^T Q (q).
template <int kD>
__device__ __forceinline__ std::uint64_t operand_over_rows(const bf16* rows, int j, int c) {
  const std::uint32_t bytes = 2 * j * CoreTile<kD>::kRowGroupBytes + 8 * c * kCoreBytes;
  return shared_matrix_descriptor(rows + bytes / sizeof(bf16), CoreTile<kD>::kRowGroupBytes, kCoreBytes);
}

// Key tile `tile` of a walk ready for wgmma, then the copy of the next tile issued into its stage,
// after the barrier: the forward's products of a tile run until the end of the next iteration,
// so the stage it overwrites (read two tiles ago) is free only once every thread has finished
// the previous iteration.
template <int kD, int kThreads>
__device__ KeyTile key_tile_then_next_for_wgmma(bf16* tiles, int64_t tile, int64_t key_tiles, int64_t first_key,
                                                const AttentionShape& shape, const HeadTensor<const bf16>& k,
                                                const HeadTensor<const bf16>& v, int64_t b, int64_t kv_head) {
  const int64_t k0 = first_key + tile * kTileRows;
  wait_for_tile_for_wgmma(false);
  if (tile + 1 < key_tiles)
    stage_key_tile<kD, kThreads>(tiles, static_cast<int>((tile + 1) % kStages), shape, k, v, b, kv_head,
                                 k0 + kTileRows);
  const bf16* const k_tile = tiles + 2 * (tile % kStages) * CoreTile<kD>::kElements;
  return {k0, k_tile, k_tile + CoreTile<kD>::kElements};
}

// ---- accumulators of 64 x kD in chunks of 64 columns ------------------------------------------

template <int kChunks>
__device__ __forceinline__ void zero_chunks(WarpgroupAccumulator (&acc)[kChunks]) {
  KILN_UNROLL
  for (int c = 0; c < kChunks; ++c) {
    KILN_UNROLL
    for (int t = 0; t < kWarpgroupTileColumns / 8; ++t) acc[c][t] = zero_accumulator();
  }
}

// Waits for the group just committed and pins every chunk's registers after the wait.
template <int kChunks>
__device__ __forceinline__ void wait_for_chunks(WarpgroupAccumulator (&acc)[kChunks]) {
  warpgroup_wait<0>(acc[0]);
  KILN_UNROLL
  for (int c = 1; c < kChunks; ++c) warpgroup_keep_registers(acc[c]);
}

// Stores this lane's two rows of the chunks (d = 64c ..), scaled, into row0 / row8 (null: not a
// real row).
template <int kChunks>
__device__ __forceinline__ void store_chunks(bf16* row0, bf16* row8, WarpgroupAccumulator (&acc)[kChunks], float scale) {
  KILN_UNROLL
  for (int c = 0; c < kChunks; ++c)
    store_rows(row0 != nullptr ? row0 + kWarpgroupTileColumns * c : nullptr,
               row8 != nullptr ? row8 + kWarpgroupTileColumns * c : nullptr, acc[c], scale);
}

// acc[c] += a[j] x (chunk c of `rows` over its row step j) for every k-step j and chunk c.
template <int kD, int kSteps, int kChunks>
__device__ __forceinline__ void accumulate_over_rows(WarpgroupAccumulator (&acc)[kChunks], MmaFragmentA (&a)[kSteps],
                                                     const bf16* rows) {
  KILN_UNROLL
  for (int j = 0; j < kSteps; ++j) {
    KILN_UNROLL
    for (int c = 0; c < kChunks; ++c) warpgroup_mma<true>(acc[c], a[j], operand_over_rows<kD>(rows, j, c), true);
  }
}

// The bf16 A fragments of a 16 x 64 accumulator's four 16-wide k-steps, pinned for the fence.
__device__ __forceinline__ void fragments_of(MmaFragmentA (&a)[kTileRows / 16], WarpgroupAccumulator& acc) {
  KILN_UNROLL
  for (int j = 0; j < kTileRows / 16; ++j) {
    a[j] = a_from_accumulators(acc[2 * j], acc[2 * j + 1]);
    warpgroup_keep_fragment(a[j]);
  }
}

// ---- launches ---------------------------------------------------------------------------------

// launch(head dim, warpgroups) with both as std::integral_constant: head dim 64 or 128 (the
// supported check let nothing else through), 1 warpgroup for 4 warps a block, 2 for 8.
template <class Launch>
void with_wgmma_shape(int64_t dim, int warps, Launch launch) {
  const auto for_dim = [&](auto warpgroups) {
    if (dim == 64) return launch(std::integral_constant<int, 64>{}, warpgroups);
    launch(std::integral_constant<int, 128>{}, warpgroups);
  };
  if (warps == 8) return for_dim(std::integral_constant<int, 2>{});
  for_dim(std::integral_constant<int, 1>{});
}

}  // namespace kiln::KILN_CUDA_NS::flash_detail
