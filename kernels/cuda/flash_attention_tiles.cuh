#pragma once
// What the tensor-core attention kernels share (flash_attention.cu: mma.sync, sm_80+;
// flash_attention_wgmma.cu: the sm_90a forward): block and tile shapes, staging by cp.async,
// mma.m16n8k16 fragments, the visibility of keys, the forward's online softmax, launches.
// Device functions are inline templates or __forceinline__, so each kernel file gets its own.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/async_copy.cuh"
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/attention_visibility.cuh"
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/kernel_launch.hpp"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace kiln::KILN_CUDA_NS::flash_detail {

using namespace attention_detail;
using bf16 = __nv_bfloat16;
using std::int64_t;

constexpr int kWarpRows = 16;  // one mma row tile per warp
// A block is kWarps warps (4 or 8, flash_attention_block_warps) owning 16 * kWarps rows:
// queries (forward, dq) or keys (dk, dv).
template <int kWarps>
struct BlockShape {
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kRows = kWarpRows * kWarps;
};
constexpr int kPad = 8;         // bf16 per shared row beyond its data
constexpr int kTileRows = 64;   // rows of a streamed tile: keys (forward, dq) or queries (dk, dv)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNegativeInfinity = -INFINITY;

// A streamed tile of kTileRows rows of head dim kD in shared memory, and the dynamic shared
// memory of a kernel that double-buffers `kTensors` of them (k and v, or q and dout).
template <int kD>
struct Tile {
  static constexpr int kStride = kD + kPad;
  static constexpr int kElements = kTileRows * kStride;
};
template <int kD, int kTensors>
constexpr std::size_t staged_shared_bytes() {
  return 2 * kTensors * Tile<kD>::kElements * sizeof(bf16);
}

__device__ __forceinline__ int group_of_lane() { return lane_id() >> 2; }   // the fragment row
__device__ __forceinline__ int member_of_lane() { return lane_id() & 3; }  // the column pair

// ---- staging ---------------------------------------------------------------------------------

// Rows t0 .. t0 + kRows - 1 of head h of x into dst[r * stride + d] by cp.async (one 16-byte
// word per copy, consecutive threads along a row); rows r >= n are zero-filled and their source
// is not read. The caller commits the group.
template <int kD, int kThreads, int kRows = kTileRows>
__device__ void stage_tile(bf16* dst, const HeadTensor<const bf16>& x, int64_t b, int64_t t0, int64_t n, int64_t h) {
  constexpr int kWords = kD / 8;
  for (int e = static_cast<int>(threadIdx.x); e < kRows * kWords; e += kThreads) {
    const int r = e / kWords, w = e % kWords;
    const bool real = r < n;
    async_copy_16(dst + r * Tile<kD>::kStride + 8 * w, x.row(b, real ? t0 + r : t0, h) + 8 * w, real);
  }
}

// ---- fragments --------------------------------------------------------------------------------

__device__ __forceinline__ unsigned pair_at(const bf16* p) { return load_word<unsigned>(p); }

// A fragment of the 16 x 16 block at column k0 of row-major rows row0 (fragment rows 0-7) and
// row8 (rows 8-15) given as pointers to this lane's two rows; null rows read as zeros.
__device__ __forceinline__ MmaFragmentA a_from_rows(const bf16* row0, const bf16* row8, int k0) {
  const int c = k0 + 2 * member_of_lane();
  MmaFragmentA a;
  a.reg[0] = row0 != nullptr ? pair_at(row0 + c) : 0u;
  a.reg[1] = row8 != nullptr ? pair_at(row8 + c) : 0u;
  a.reg[2] = row0 != nullptr ? pair_at(row0 + c + 8) : 0u;
  a.reg[3] = row8 != nullptr ? pair_at(row8 + c + 8) : 0u;
  return a;
}

// Two B fragments of k-step k0, for the 8-column tiles n0 and n0 + 8, by one ldmatrix x4:
// matrix m of it is the 8 x 8 block at tile rows (m >> 1) * 8, columns (m & 1) * 8 (plain) or
// rows (m & 1) * 8, columns (m >> 1) * 8 (.trans), lane 8m + r giving its row r.
struct FragmentPairB {
  MmaFragmentB first, second;
};
__device__ __forceinline__ FragmentPairB pair_of(const unsigned (&reg)[4]) {
  return {{{reg[0], reg[1]}}, {{reg[2], reg[3]}}};
}
// B[k][n] = tile[n * stride + k]: the tile's rows are B's columns (keys in q k^T).
__device__ __forceinline__ FragmentPairB b_pair_from_columns(const bf16* tile, int n0, int k0, int stride) {
  const int m = lane_id() >> 3, r = lane_id() & 7;
  unsigned reg[4];
  load_matrices_x4(reg, tile + (n0 + r + (m >> 1) * 8) * stride + k0 + (m & 1) * 8);
  return pair_of(reg);
}
// B[k][n] = tile[k * stride + n]: the tile's rows are B's rows (keys in p v), loaded .trans.
__device__ __forceinline__ FragmentPairB b_pair_from_rows(const bf16* tile, int n0, int k0, int stride) {
  const int m = lane_id() >> 3, r = lane_id() & 7;
  unsigned reg[4];
  load_matrices_x4_transposed(reg, tile + (k0 + r + (m & 1) * 8) * stride + n0 + (m >> 1) * 8);
  return pair_of(reg);
}

// The A fragment of k-step j from accumulator tiles 2j and 2j + 1, rounded to bf16.
__device__ __forceinline__ MmaFragmentA a_from_accumulators(const MmaAccumulator& left, const MmaAccumulator& right) {
  MmaFragmentA a;
  a.reg[0] = pack_bf16_pair(__float2bfloat16_rn(left.reg[0]), __float2bfloat16_rn(left.reg[1]));
  a.reg[1] = pack_bf16_pair(__float2bfloat16_rn(left.reg[2]), __float2bfloat16_rn(left.reg[3]));
  a.reg[2] = pack_bf16_pair(__float2bfloat16_rn(right.reg[0]), __float2bfloat16_rn(right.reg[1]));
  a.reg[3] = pack_bf16_pair(__float2bfloat16_rn(right.reg[2]), __float2bfloat16_rn(right.reg[3]));
  return a;
}

__device__ __forceinline__ MmaAccumulator zero_accumulator() { return MmaAccumulator{{0.0f, 0.0f, 0.0f, 0.0f}}; }

// acc[t] += a x B for every 8-column tile t of a kTiles * 8-wide product at k-step k0.
template <int kTiles, bool kTileRowsAreBColumns>
__device__ __forceinline__ void mma_row_of_tiles(MmaAccumulator (&acc)[kTiles], const MmaFragmentA& a,
                                                 const bf16* tile, int k0, int stride) {
  KILN_UNROLL
  for (int t = 0; t < kTiles; t += 2) {
    const FragmentPairB b = kTileRowsAreBColumns ? b_pair_from_columns(tile, 8 * t, k0, stride)
                                                 : b_pair_from_rows(tile, 8 * t, k0, stride);
    mma_m16n8k16(acc[t], a, b.first, acc[t]);
    mma_m16n8k16(acc[t + 1], a, b.second, acc[t + 1]);
  }
}

// The A fragment of this warp's 16 rows from row0 of a row-major shared block, k-step k0, by
// one ldmatrix x4: matrix m is the 8 x 8 block at rows (m & 1) * 8, columns (m >> 1) * 8.
__device__ __forceinline__ MmaFragmentA a_from_shared(const bf16* rows, int stride, int row0, int k0) {
  const int m = lane_id() >> 3, r = lane_id() & 7;
  unsigned reg[4];
  load_matrices_x4(reg, rows + (row0 + r + (m & 1) * 8) * stride + k0 + (m >> 1) * 8);
  return {{reg[0], reg[1], reg[2], reg[3]}};
}

// acc = rows x tile^T over the head dim: the 16 x (8 kTiles) scores (or dp) of this warp's rows
// against the tile's first 8 kTiles rows; row_fragment(s) is the rows' A fragment of k-step s.
template <int kDSteps, int kTiles, class RowFragment>
__device__ __forceinline__ void products_with_tile(MmaAccumulator (&acc)[kTiles], const RowFragment& row_fragment,
                                                   const bf16* tile, int stride) {
  KILN_UNROLL
  for (int t = 0; t < kTiles; ++t) acc[t] = zero_accumulator();
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) mma_row_of_tiles<kTiles, true>(acc, row_fragment(s), tile, 16 * s, stride);
}
// ... the rows' fragments held in registers,
template <int kTiles, int kDSteps>
__device__ __forceinline__ void products_with_tile(MmaAccumulator (&acc)[kTiles], const MmaFragmentA (&rows)[kDSteps],
                                                   const bf16* tile, int stride) {
  products_with_tile<kDSteps>(acc, [&](int s) { return rows[s]; }, tile, stride);
}
// ... or loaded from this warp's rows of a shared block (stride `stride` too).
template <int kDSteps, int kTiles>
__device__ __forceinline__ void products_with_tile(MmaAccumulator (&acc)[kTiles], const bf16* rows, int row0,
                                                   const bf16* tile, int stride) {
  products_with_tile<kDSteps>(acc, [&](int s) { return a_from_shared(rows, stride, row0, 16 * s); }, tile, stride);
}

// The max or sum over the 4 lanes of a fragment row (they hold its 8-wide tile's columns).
__device__ __forceinline__ float row_max(float value) {
  value = fmaxf(value, __shfl_xor_sync(kFullWarp, value, 1));
  return fmaxf(value, __shfl_xor_sync(kFullWarp, value, 2));
}
__device__ __forceinline__ float row_sum(float value) {
  value += __shfl_xor_sync(kFullWarp, value, 1);
  return value + __shfl_xor_sync(kFullWarp, value, 2);
}

// Stores accumulator tiles (16 rows x 8 * kTiles columns) as bf16, each scaled, into this lane's
// two rows (null: not a real row).
template <int kTiles>
__device__ void store_rows(bf16* row0, bf16* row8, const MmaAccumulator (&acc)[kTiles], float scale) {
  KILN_UNROLL
  for (int t = 0; t < kTiles; ++t) {
    const int d = 8 * t + 2 * member_of_lane();
    if (row0 != nullptr)
      store_word(row0 + d, pack_bf16_pair(__float2bfloat16_rn(acc[t].reg[0] * scale),
                                          __float2bfloat16_rn(acc[t].reg[1] * scale)));
    if (row8 != nullptr)
      store_word(row8 + d, pack_bf16_pair(__float2bfloat16_rn(acc[t].reg[2] * scale),
                                          __float2bfloat16_rn(acc[t].reg[3] * scale)));
  }
}

// The ranges of keys that the block's queries from i0 see, into lo/hi (each warp its 16).
__device__ inline void query_ranges(const AttentionShape& shape, const std::int32_t* doc, int64_t i0, int64_t* lo,
                             int64_t* hi) {
  for (int r = 0; r < kWarpRows; ++r) {
    const int slot = warp_id() * kWarpRows + r;
    const int64_t i = i0 + slot;
    KeyRange range{0, 0};
    if (i < shape.tq) range = visible_keys(doc, shape.tk - shape.tq + i, shape.tk, shape.causal);
    if (lane_id() == 0) lo[slot] = range.lo, hi[slot] = range.hi;
  }
}

// Whether every one of this warp's rows sees all keys k0 .. k0 + kTileRows - 1 (lo <= k0 and
// k0 + kTileRows <= hi for both of each lane's rows): then the tile needs no mask. Warp-uniform.
__device__ __forceinline__ bool warp_sees_whole_tile(const int64_t (&lo)[2], const int64_t (&hi)[2], int64_t k0) {
  const bool mine = lo[0] <= k0 && k0 + kTileRows <= hi[0] && lo[1] <= k0 && k0 + kTileRows <= hi[1];
  return __all_sync(kFullWarp, mine) != 0;
}

// The tiles a loop streams: tile i covers rows first + i * kTileRows ...
__device__ __forceinline__ int64_t tile_count(int64_t first, int64_t end) {
  return end > first ? (end - first + kTileRows - 1) / kTileRows : 0;
}

// A forward or dq block: batch row b, query head h, queries i0 .. i0 + kBlockRows - 1, the kv
// head they read, and the keys any of them sees: key_tiles tiles of kTileRows from first_key.
struct QueryBlock {
  int64_t b, h, i0, kv_head, first_key, key_tiles;
};

// Sets a forward or dq block up: each query's visible keys into range_lo / range_hi and whatever
// before_barrier(block) writes to shared memory, a barrier, then the keys of the whole block.
template <int kBlockRows, class BeforeBarrier>
__device__ QueryBlock begin_query_block(const AttentionShape& shape, const std::int32_t* doc_ids, int64_t* range_lo,
                                        int64_t* range_hi, BeforeBarrier before_barrier) {
  QueryBlock block;
  block.b = blockIdx.z, block.h = blockIdx.y, block.i0 = int64_t{blockIdx.x} * kBlockRows;
  block.kv_head = block.h / (shape.heads / shape.kv_heads);
  query_ranges(shape, doc_ids != nullptr ? doc_ids + block.b * shape.tk : nullptr, block.i0, range_lo, range_hi);
  before_barrier(block);
  __syncthreads();
  const KeyRange keys = union_of(range_lo, range_hi, kBlockRows);
  block.first_key = keys.lo, block.key_tiles = tile_count(keys.lo, keys.hi);
  return block;
}


// Waits for this thread's copies of the tile the loop is at (the next one, when issued, stays in
// flight).
__device__ __forceinline__ void wait_for_own_copies(bool next_in_flight) {
  if (next_in_flight) {
    async_copy_wait<1>();
  } else {
    async_copy_wait<0>();
  }
}
// ... then makes every thread's copies of it visible to the block.
__device__ __forceinline__ void wait_for_current_tile(bool next_in_flight) {
  wait_for_own_copies(next_in_flight);
  __syncthreads();
}

// Whether element e (of 4) of 8-key tile t of a warp's scores from key k0 is visible to its row
// (rows: e < 2 the lane's first, else its second): always when the whole tile is.
__device__ __forceinline__ bool key_visible(bool unmasked, const int64_t (&lo)[2], const int64_t (&hi)[2], int64_t k0,
                                            int t, int e) {
  const int r = e >> 1;
  const int64_t key = k0 + 8 * t + 2 * member_of_lane() + (e & 1);
  return unmasked || (key >= lo[r] && key < hi[r]);
}

// A key tile ready in shared memory: its first key, and where its k and v rows are.
struct KeyTile {
  int64_t k0;
  const bf16* k;
  const bf16* v;
};

// ---- the forward's queries and online softmax (both forward kernels) --------------------------

// The fragment rows of this lane in a block whose warp w owns rows 16w .. 16w + 15.
struct LaneRows {
  int slot[2];
};
__device__ __forceinline__ LaneRows lane_rows() {
  return {{warp_id() * kWarpRows + group_of_lane(), warp_id() * kWarpRows + group_of_lane() + 8}};
}

// This lane's two queries, i0 + slot[r]: the keys each sees (from query_ranges' lo/hi) and their
// q as the A fragments of the head dim's kDSteps 16-wide steps (zeros past Tq).
template <int kDSteps>
struct LaneQueries {
  int64_t lo[2], hi[2];
  MmaFragmentA q[kDSteps];
};
template <int kDSteps>
__device__ __forceinline__ void load_lane_queries(LaneQueries<kDSteps>& x, const AttentionShape& shape,
                                                  const AttentionForward<bf16>& args, int64_t b, int64_t h, int64_t i0,
                                                  const int (&slot)[2], const int64_t* range_lo,
                                                  const int64_t* range_hi) {
  const bf16* q_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    x.lo[r] = range_lo[slot[r]], x.hi[r] = range_hi[slot[r]];
    q_row[r] = i0 + slot[r] < shape.tq ? args.q.row(b, i0 + slot[r], h) : nullptr;
  }
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) x.q[s] = a_from_rows(q_row[0], q_row[1], 16 * s);
}

// Per row of this lane's two: a factor that scales its output accumulators.
struct RowFactors {
  float row[2];
};

// One key tile of the online softmax for this lane's two rows (fragment rows group and group +
// 8 of its warp's 16): masks the 16 x 64 scores (keys k0 ..) to what each row sees (all of
// them when `unmasked`), scales them to log2 units, folds the tile's maximum into running_max,
// turns the scores into probabilities relative to it and adds them to this lane's part of
// running_sum. Returns the factor the output accumulated so far must be scaled by (0 before the
// first visible key).
template <int kKeyTiles>
__device__ __forceinline__ RowFactors online_softmax_step(MmaAccumulator (&score)[kKeyTiles], const int64_t (&lo)[2],
                                                          const int64_t (&hi)[2], int64_t k0, bool unmasked,
                                                          float scale_log2, float (&running_max)[2],
                                                          float (&running_sum)[2]) {
  float tile_max[2] = {kNegativeInfinity, kNegativeInfinity};
  KILN_UNROLL
  for (int t = 0; t < kKeyTiles; ++t) {
    KILN_UNROLL
    for (int e = 0; e < 4; ++e) {
      score[t].reg[e] = key_visible(unmasked, lo, hi, k0, t, e) ? score[t].reg[e] * scale_log2 : kNegativeInfinity;
      tile_max[e >> 1] = fmaxf(tile_max[e >> 1], score[t].reg[e]);
    }
  }
  float base[2];
  RowFactors correction;
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    const float new_max = fmaxf(running_max[r], row_max(tile_max[r]));
    base[r] = new_max == kNegativeInfinity ? 0.0f : new_max;  // no visible key yet: p = 0
    correction.row[r] = exp2f(running_max[r] - base[r]);      // 0 before the first visible key
    running_max[r] = new_max;
    running_sum[r] *= correction.row[r];
  }
  KILN_UNROLL
  for (int t = 0; t < kKeyTiles; ++t) {
    KILN_UNROLL
    for (int e = 0; e < 4; ++e) {
      score[t].reg[e] = exp2f(score[t].reg[e] - base[e >> 1]);
      running_sum[e >> 1] += score[t].reg[e];
    }
  }
  return correction;
}

// acc's rows times their factors: c0, c1 are row 0's, c2, c3 row 8's.
template <int kTiles>
__device__ __forceinline__ void scale_rows(MmaAccumulator (&acc)[kTiles], const RowFactors& factor) {
  KILN_UNROLL
  for (int t = 0; t < kTiles; ++t) {
    acc[t].reg[0] *= factor.row[0], acc[t].reg[1] *= factor.row[0];
    acc[t].reg[2] *= factor.row[1], acc[t].reg[3] *= factor.row[1];
  }
}

// The end of the softmax for this lane's two rows, queries i0 + slot[r]: writes each real row's
// log-sum-exp (+inf for a row that saw no key, which zeroes its backward probabilities) and
// returns 1 / row sum (0 for such a row: it outputs zeros).
__device__ __forceinline__ RowFactors finish_softmax_rows(const AttentionShape& shape, const AttentionForward<bf16>& args,
                                                          int64_t b, int64_t h, int64_t i0, const int (&slot)[2],
                                                          const float (&running_max)[2],
                                                          const float (&running_sum)[2]) {
  RowFactors inverse;
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    const float sum = row_sum(running_sum[r]);
    inverse.row[r] = sum > 0.0f ? 1.0f / sum : 0.0f;
    const int64_t i = i0 + slot[r];
    if (member_of_lane() == 0 && i < shape.tq)
      args.lse[(b * shape.heads + h) * shape.tq + i] = sum > 0.0f ? running_max[r] * kLn2 + logf(sum) : INFINITY;
  }
  return inverse;
}

// ---- the backward's statistics and score gradients (both dq kernels; dk/dv the statistics) -----

// delta = dout . out of queries i0 .. i0 + kRows - 1, into shared, and their lse in log2 units
// (+inf past Tq). kThreads / kRows threads per row (2 or 4), each its share of the row in
// 16-byte words, so the loads of all rows are in flight at once (a warp walking its rows one by
// one stalled on each in turn).
template <int kD, int kThreads, int kRows>
__device__ void query_statistics(const AttentionShape& shape, const AttentionBackward<bf16>& args, int64_t b,
                                 int64_t h, int64_t i0, float* delta, float* lse_log2) {
  constexpr int kPerRow = kThreads / kRows, kShare = kD / kPerRow;
  static_assert(kPerRow * kRows == kThreads && kShare % 8 == 0, "whole 16-byte words per thread");
  const int slot = static_cast<int>(threadIdx.x) / kPerRow, part = static_cast<int>(threadIdx.x) % kPerRow;
  const int64_t i = i0 + slot;
  float sum = 0.0f;
  if (i < shape.tq) {
    const bf16* dout = args.dout.row(b, i, h) + part * kShare;
    const bf16* out = args.out.row(b, i, h) + part * kShare;
    KILN_UNROLL
    for (int w = 0; w < kShare / 8; ++w) {
      float g[8], o[8];
      Pack<bf16>::load(dout + 8 * w, g);
      Pack<bf16>::load(out + 8 * w, o);
      KILN_UNROLL
      for (int e = 0; e < 8; ++e) sum += g[e] * o[e];
    }
  }
  KILN_UNROLL
  for (int offset = 1; offset < kPerRow; offset <<= 1) sum += __shfl_xor_sync(kFullWarp, sum, offset);
  if (part == 0) {
    delta[slot] = sum;
    lse_log2[slot] = i < shape.tq ? args.lse[(b * shape.heads + h) * shape.tq + i] * kLog2e : INFINITY;
  }
}

// This lane's two queries in the dq kernels, i0 + slot[r]: the keys each sees, its delta and
// log2 lse (from query_ranges and query_statistics' shared rows), and its q and dout as A
// fragments of the head dim's kDSteps 16-wide steps (zeros past Tq).
template <int kDSteps>
struct LaneGradientQueries {
  int64_t lo[2], hi[2];
  float delta[2], lse[2];
  MmaFragmentA q[kDSteps], dout[kDSteps];
};
template <int kDSteps>
__device__ __forceinline__ void load_lane_gradient_queries(LaneGradientQueries<kDSteps>& x, const AttentionShape& shape,
                                                           const AttentionBackward<bf16>& args, int64_t b, int64_t h,
                                                           int64_t i0, const int (&slot)[2], const int64_t* range_lo,
                                                           const int64_t* range_hi, const float* delta_of,
                                                           const float* lse_of) {
  const bf16 *q_row[2], *dout_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    x.lo[r] = range_lo[slot[r]], x.hi[r] = range_hi[slot[r]];
    x.delta[r] = delta_of[slot[r]], x.lse[r] = lse_of[slot[r]];
    const bool real = i0 + slot[r] < shape.tq;
    q_row[r] = real ? args.q.row(b, i0 + slot[r], h) : nullptr;
    dout_row[r] = real ? args.dout.row(b, i0 + slot[r], h) : nullptr;
  }
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) {
    x.q[s] = a_from_rows(q_row[0], q_row[1], 16 * s);
    x.dout[s] = a_from_rows(dout_row[0], dout_row[1], 16 * s);
  }
}

// ds = p (dp - delta) into the scores s of this lane's two rows of a 16 x 64 tile from key k0,
// with p = exp2(s scale_log2 - lse) where the key is visible and 0 where not.
template <int kKeyTiles>
__device__ __forceinline__ void score_gradients(MmaAccumulator (&s)[kKeyTiles], const MmaAccumulator (&dp)[kKeyTiles],
                                                const int64_t (&lo)[2], const int64_t (&hi)[2], int64_t k0,
                                                bool unmasked, float scale_log2, const float (&lse)[2],
                                                const float (&delta)[2]) {
  KILN_UNROLL
  for (int t = 0; t < kKeyTiles; ++t) {
    KILN_UNROLL
    for (int e = 0; e < 4; ++e) {
      const int r = e >> 1;
      const float p = key_visible(unmasked, lo, hi, k0, t, e) ? exp2f(s[t].reg[e] * scale_log2 - lse[r]) : 0.0f;
      s[t].reg[e] = p * (dp[t].reg[e] - delta[r]);
    }
  }
}

// ---- the work of a dk/dv block (both dk/dv kernels) -------------------------------------------

// A dk/dv block's keys k0 .. k0 + n - 1 of kv head kv_head, and its work items: each query head
// of the group times each 64-query tile that sees any of the keys.
struct KeyBlockWork {
  int64_t kv_head, group, k0, n, offset, first_query, queries, tiles_per_head, items;
  // Item i: query head kv_head * group + i / tiles_per_head, its query tile i % tiles_per_head.
  __device__ int64_t head(int64_t item) const { return kv_head * group + item / tiles_per_head; }
  __device__ int64_t first(int64_t item) const { return first_query + (item % tiles_per_head) * kTileRows; }
  __device__ int64_t count(int64_t item) const { return smaller(kTileRows, first_query + queries - first(item)); }
};

// The run of each key of the block into key_lo / key_hi (query position p sees key j when
// lo_j <= p < hi_j and, when causal, j <= p; the first half of the warps take 32 keys each),
// then, after a barrier, the block's work.
template <int kWarps, int kBlockRows>
__device__ KeyBlockWork key_block_work(const AttentionShape& shape, const std::int32_t* doc, int64_t kv_head,
                                       int64_t k0, int64_t* key_lo, int64_t* key_hi) {
  static_assert(32 * (kWarps / 2) == kBlockRows, "half the warps cover the block's keys, 32 each");
  if (warp_id() < kWarps / 2) {
    const int64_t first = k0 + 32 * warp_id(), count = smaller(32, shape.tk - first);
    KeyRange run{0, shape.tk};
    if (count > 0) run = key_run(doc, first, count, shape.tk);
    key_lo[32 * warp_id() + lane_id()] = run.lo, key_hi[32 * warp_id() + lane_id()] = run.hi;
  }
  __syncthreads();
  KeyBlockWork work;
  work.kv_head = kv_head, work.group = shape.heads / shape.kv_heads, work.k0 = k0;
  work.n = smaller(kBlockRows, shape.tk - k0), work.offset = shape.tk - shape.tq;
  const int64_t first_position = shape.causal ? k0 : key_lo[0];
  const int64_t last_position = key_hi[work.n - 1];
  work.first_query = larger(0, first_position - work.offset);
  work.queries = larger(0, smaller(shape.tq, last_position - work.offset) - work.first_query);
  work.tiles_per_head = tile_count(0, work.queries);
  work.items = work.group * work.tiles_per_head;
  return work;
}

// This lane's two keys k0 + slot[r] and the query positions lo[r] <= p < hi[r] that see each
// (none for a row past the block's keys, whose staged row is zeros).
struct LaneKeys {
  int64_t key[2], lo[2], hi[2];
};
__device__ __forceinline__ LaneKeys lane_keys(const AttentionShape& shape, const KeyBlockWork& work,
                                              const int (&slot)[2], const int64_t* key_lo, const int64_t* key_hi) {
  LaneKeys x;
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    x.key[r] = work.k0 + slot[r];
    x.lo[r] = key_lo[slot[r]], x.hi[r] = key_hi[slot[r]];
    if (slot[r] >= work.n) x.hi[r] = x.lo[r];
    if (shape.causal) x.lo[r] = larger(x.lo[r], x.key[r]);  // causal: a key is seen from its own position on
  }
  return x;
}

// ---- eligibility and launches -----------------------------------------------------------------

template <class T>
bool rows_aligned(const HeadTensor<T>& x) {
  const auto address = reinterpret_cast<std::uintptr_t>(x.data);
  return address % 16 == 0 && x.batch_stride % 8 == 0 && x.seq_stride % 8 == 0 && x.head_stride % 8 == 0;
}

inline unsigned tiles(int64_t count, int64_t tile) { return static_cast<unsigned>((count + tile - 1) / tile); }

// Launches `kernel` with kBytes of dynamic shared memory; above the 48 KiB default (head dim
// 128) the kernel opts in.
template <std::size_t kBytes, class Kernel, class Args>
void launch_with_shared(const char* name, Kernel* kernel, dim3 grid, int threads, const AttentionShape& shape,
                        const Args& args, cudaStream_t stream) {
  if (kBytes > 48 * 1024) {
    const cudaError_t error =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kBytes));
    if (error != cudaSuccess)
      cuda_launch::fail_kernel_launch(name, cudaGetErrorName(error), cudaGetErrorString(error),
                                      "cudaFuncSetAttribute(MaxDynamicSharedMemorySize) refused the staging buffers");
  }
  KILN_LAUNCH_NAMED(name, kernel, grid, dim3(threads), kBytes, stream, shape, args);
}

}  // namespace kiln::KILN_CUDA_NS::flash_detail
