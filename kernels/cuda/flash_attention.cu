// Tensor-core attention kernels (see flash_attention.hpp for what they compute).
//
// Every product is mma.m16n8k16: A 16x16 (row-major), B 16x8 read from shared memory where
// each of its columns is a run of consecutive k (so a fragment register is one 32-bit load),
// C/D 16x8 f32. A warp owns 16 rows of the output (queries, or keys for dk/dv) and keeps their
// A fragments (q, dout, or k, v) in registers; the other operand is staged per tile in shared
// memory twice where both orientations are needed (row-major and transposed). Scores come out
// of the first product in the accumulator layout, which is also the A layout of the second
// product (columns 2j and 2j+1 of the 8-wide tiles are the 16-wide k-step j), so
// probabilities never leave registers.
//
// Shared rows are padded by 8 bf16 (16 bytes): fragment loads of 8 rows x 4 words then fall on
// 32 distinct banks.
#include "kernels/cuda/flash_attention.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/attention_visibility.cuh"
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/kernel_launch.hpp"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

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
int block_warps = 4;
constexpr int kPad = 8;                         // bf16 per shared row beyond its data
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNegativeInfinity = -INFINITY;

__device__ __forceinline__ int group_of_lane() { return lane_id() >> 2; }   // the fragment row
__device__ __forceinline__ int member_of_lane() { return lane_id() & 3; }  // the column pair

// ---- staging ---------------------------------------------------------------------------------

// dst[r * stride + d] <- element d of row (b, t0 + r, h), r < rows; zeros for r >= n. 16-byte
// words, consecutive threads along a row.
template <int kD, int kThreads>
__device__ void stage_rows(bf16* dst, int stride, const HeadTensor<const bf16>& x, int64_t b, int64_t t0, int64_t n,
                           int64_t h, int rows) {
  constexpr int kWords = kD / 8;
  for (int e = static_cast<int>(threadIdx.x); e < rows * kWords; e += kThreads) {
    const int r = e / kWords, w = e % kWords;
    const uint4 word = r < n ? load_word<uint4>(x.row(b, t0 + r, h) + 8 * w) : make_uint4(0, 0, 0, 0);
    store_word(dst + r * stride + 8 * w, word);
  }
}

// dst[d * stride + r] <- the same elements transposed; consecutive threads take consecutive
// rows, so the 2-byte stores of a warp fill consecutive words.
template <int kD, int kThreads>
__device__ void stage_rows_transposed(bf16* dst, int stride, const HeadTensor<const bf16>& x, int64_t b, int64_t t0,
                                      int64_t n, int64_t h, int rows) {
  for (int e = static_cast<int>(threadIdx.x); e < rows * (kD / 8); e += kThreads) {
    const int r = e % rows, w = e / rows;
    const uint4 word = r < n ? load_word<uint4>(x.row(b, t0 + r, h) + 8 * w) : make_uint4(0, 0, 0, 0);
    bf16 values[8];
    std::memcpy(values, &word, sizeof(word));
    KILN_UNROLL
    for (int i = 0; i < 8; ++i) dst[(8 * w + i) * stride + r] = values[i];
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

// B fragment with B[k][n] = base[(n0 + n) * stride + k0 + k].
__device__ __forceinline__ MmaFragmentB b_from_shared(const bf16* base, int stride, int n0, int k0) {
  const bf16* column = base + (n0 + group_of_lane()) * stride + k0 + 2 * member_of_lane();
  MmaFragmentB b;
  b.reg[0] = pair_at(column);
  b.reg[1] = pair_at(column + 8);
  return b;
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

// The scores and the probability gradients' dot products of one 8-column tile t, over the head
// dim: score = rows_a . columns of tile_a, dp = rows_b . columns of tile_b (dq: q k^T and
// dout v^T; dk, dv: the same transposed, k q^T and v dout^T).
template <int kDSteps>
__device__ __forceinline__ void scores_and_dp(MmaAccumulator& score, MmaAccumulator& dp,
                                              const MmaFragmentA (&rows_a)[kDSteps], const bf16* tile_a,
                                              const MmaFragmentA (&rows_b)[kDSteps], const bf16* tile_b, int stride,
                                              int t) {
  score = zero_accumulator(), dp = zero_accumulator();
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) {
    mma_m16n8k16(score, rows_a[s], b_from_shared(tile_a, stride, 8 * t, 16 * s), score);
    mma_m16n8k16(dp, rows_b[s], b_from_shared(tile_b, stride, 8 * t, 16 * s), dp);
  }
}

// The ranges of keys that the block's queries from i0 see, into lo/hi (each warp its 16).
__device__ void query_ranges(const AttentionShape& shape, const std::int32_t* doc, int64_t i0, int64_t* lo,
                             int64_t* hi) {
  for (int r = 0; r < kWarpRows; ++r) {
    const int slot = warp_id() * kWarpRows + r;
    const int64_t i = i0 + slot;
    KeyRange range{0, 0};
    if (i < shape.tq) range = visible_keys(doc, shape.tk - shape.tq + i, shape.tk, shape.causal);
    if (lane_id() == 0) lo[slot] = range.lo, hi[slot] = range.hi;
  }
}

// ---- forward ----------------------------------------------------------------------------------

template <int kD, int kWarps>
__global__ void __launch_bounds__(BlockShape<kWarps>::kThreads)
    flash_forward_kernel(AttentionShape shape, AttentionForward<bf16> args) {
  constexpr int kThreads = BlockShape<kWarps>::kThreads, kBlockRows = BlockShape<kWarps>::kRows;
  constexpr int kKeys = 64;  // keys per tile
  constexpr int kKStride = kD + kPad, kVtStride = kKeys + kPad;
  constexpr int kDSteps = kD / 16, kDTiles = kD / 8, kKeyTiles = kKeys / 8;
  __align__(16) __shared__ bf16 k_tile[kKeys * kKStride];   // [key][d]
  __align__(16) __shared__ bf16 vt_tile[kD * kVtStride];    // [d][key]
  __shared__ int64_t range_lo[kBlockRows], range_hi[kBlockRows];

  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t{blockIdx.x} * kBlockRows;
  const int64_t kv_head = h / (shape.heads / shape.kv_heads);
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  query_ranges(shape, doc, i0, range_lo, range_hi);
  __syncthreads();
  const KeyRange block_keys = union_of(range_lo, range_hi, kBlockRows);

  // This lane's fragment rows: queries i0 + slot[0] and i0 + slot[1].
  const int slot[2] = {warp_id() * kWarpRows + group_of_lane(), warp_id() * kWarpRows + group_of_lane() + 8};
  int64_t lo[2], hi[2];
  const bf16* q_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    lo[r] = range_lo[slot[r]], hi[r] = range_hi[slot[r]];
    q_row[r] = i0 + slot[r] < shape.tq ? args.q.row(b, i0 + slot[r], h) : nullptr;
  }
  MmaFragmentA q[kDSteps];
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) q[s] = a_from_rows(q_row[0], q_row[1], 16 * s);

  MmaAccumulator out[kDTiles];
  KILN_UNROLL
  for (int t = 0; t < kDTiles; ++t) out[t] = zero_accumulator();
  // Running max (log2 units of the scaled scores) and this lane's part of the row sum.
  float running_max[2] = {kNegativeInfinity, kNegativeInfinity}, running_sum[2] = {0.0f, 0.0f};
  const float scale_log2 = shape.scale * kLog2e;

  for (int64_t k0 = block_keys.lo; k0 < block_keys.hi; k0 += kKeys) {
    const int64_t n = smaller(kKeys, shape.tk - k0);
    __syncthreads();  // the previous tile is read
    stage_rows<kD, kThreads>(k_tile, kKStride, args.k, b, k0, n, kv_head, kKeys);
    stage_rows_transposed<kD, kThreads>(vt_tile, kVtStride, args.v, b, k0, n, kv_head, kKeys);
    __syncthreads();

    MmaAccumulator score[kKeyTiles];
    KILN_UNROLL
    for (int t = 0; t < kKeyTiles; ++t) {
      score[t] = zero_accumulator();
      KILN_UNROLL
      for (int s = 0; s < kDSteps; ++s) mma_m16n8k16(score[t], q[s], b_from_shared(k_tile, kKStride, 8 * t, 16 * s), score[t]);
    }
    float tile_max[2] = {kNegativeInfinity, kNegativeInfinity};
    KILN_UNROLL
    for (int t = 0; t < kKeyTiles; ++t) {
      KILN_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const int64_t key = k0 + 8 * t + 2 * member_of_lane() + (e & 1);
        const bool visible = key >= lo[r] && key < hi[r];
        score[t].reg[e] = visible ? score[t].reg[e] * scale_log2 : kNegativeInfinity;
        tile_max[r] = fmaxf(tile_max[r], score[t].reg[e]);
      }
    }
    float base[2];
    KILN_UNROLL
    for (int r = 0; r < 2; ++r) {
      const float new_max = fmaxf(running_max[r], row_max(tile_max[r]));
      base[r] = new_max == kNegativeInfinity ? 0.0f : new_max;  // no visible key yet: p = 0
      const float correction = exp2f(running_max[r] - base[r]);  // 0 before the first visible key
      running_max[r] = new_max;
      running_sum[r] *= correction;
      KILN_UNROLL
      for (int t = 0; t < kDTiles; ++t) out[t].reg[2 * r] *= correction, out[t].reg[2 * r + 1] *= correction;
    }
    KILN_UNROLL
    for (int t = 0; t < kKeyTiles; ++t) {
      KILN_UNROLL
      for (int e = 0; e < 4; ++e) {
        score[t].reg[e] = exp2f(score[t].reg[e] - base[e >> 1]);
        running_sum[e >> 1] += score[t].reg[e];
      }
    }
    KILN_UNROLL
    for (int j = 0; j < kKeyTiles / 2; ++j) {
      const MmaFragmentA p = a_from_accumulators(score[2 * j], score[2 * j + 1]);
      KILN_UNROLL
      for (int t = 0; t < kDTiles; ++t) mma_m16n8k16(out[t], p, b_from_shared(vt_tile, kVtStride, 8 * t, 16 * j), out[t]);
    }
  }

  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    const float sum = row_sum(running_sum[r]);
    // A query with no visible key outputs zeros; lse = +inf zeroes its backward probabilities.
    const float inverse = sum > 0.0f ? 1.0f / sum : 0.0f;
    KILN_UNROLL
    for (int t = 0; t < kDTiles; ++t) out[t].reg[2 * r] *= inverse, out[t].reg[2 * r + 1] *= inverse;
    const int64_t i = i0 + slot[r];
    if (member_of_lane() == 0 && i < shape.tq)
      args.lse[(b * shape.heads + h) * shape.tq + i] = sum > 0.0f ? running_max[r] * kLn2 + logf(sum) : INFINITY;
  }
  bf16* out_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) out_row[r] = i0 + slot[r] < shape.tq ? args.out.row(b, i0 + slot[r], h) : nullptr;
  store_rows(out_row[0], out_row[1], out, 1.0f);
}

// ---- backward: dq -----------------------------------------------------------------------------

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

template <int kD, int kWarps>
__global__ void __launch_bounds__(BlockShape<kWarps>::kThreads)
    flash_dq_kernel(AttentionShape shape, AttentionBackward<bf16> args) {
  constexpr int kThreads = BlockShape<kWarps>::kThreads, kBlockRows = BlockShape<kWarps>::kRows;
  constexpr int kKeys = 64;
  constexpr int kKStride = kD + kPad, kKtStride = kKeys + kPad;
  constexpr int kDSteps = kD / 16, kDTiles = kD / 8, kKeyTiles = kKeys / 8;
  __align__(16) __shared__ bf16 k_tile[kKeys * kKStride];   // [key][d]
  __align__(16) __shared__ bf16 v_tile[kKeys * kKStride];   // [key][d]
  __align__(16) __shared__ bf16 kt_tile[kD * kKtStride];    // [d][key]
  __shared__ int64_t range_lo[kBlockRows], range_hi[kBlockRows];
  __shared__ float delta_of[kBlockRows], lse_of[kBlockRows];

  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t{blockIdx.x} * kBlockRows;
  const int64_t kv_head = h / (shape.heads / shape.kv_heads);
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  query_ranges(shape, doc, i0, range_lo, range_hi);
  query_statistics<kD, kThreads, kBlockRows>(shape, args, b, h, i0, delta_of, lse_of);
  __syncthreads();
  const KeyRange block_keys = union_of(range_lo, range_hi, kBlockRows);

  const int slot[2] = {warp_id() * kWarpRows + group_of_lane(), warp_id() * kWarpRows + group_of_lane() + 8};
  int64_t lo[2], hi[2];
  float delta[2], lse[2];
  const bf16 *q_row[2], *dout_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    lo[r] = range_lo[slot[r]], hi[r] = range_hi[slot[r]];
    delta[r] = delta_of[slot[r]], lse[r] = lse_of[slot[r]];
    const bool real = i0 + slot[r] < shape.tq;
    q_row[r] = real ? args.q.row(b, i0 + slot[r], h) : nullptr;
    dout_row[r] = real ? args.dout.row(b, i0 + slot[r], h) : nullptr;
  }
  MmaFragmentA q[kDSteps], dout[kDSteps];
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) {
    q[s] = a_from_rows(q_row[0], q_row[1], 16 * s);
    dout[s] = a_from_rows(dout_row[0], dout_row[1], 16 * s);
  }
  MmaAccumulator dq[kDTiles];
  KILN_UNROLL
  for (int t = 0; t < kDTiles; ++t) dq[t] = zero_accumulator();
  const float scale_log2 = shape.scale * kLog2e;

  for (int64_t k0 = block_keys.lo; k0 < block_keys.hi; k0 += kKeys) {
    const int64_t n = smaller(kKeys, shape.tk - k0);
    __syncthreads();
    stage_rows<kD, kThreads>(k_tile, kKStride, args.k, b, k0, n, kv_head, kKeys);
    stage_rows<kD, kThreads>(v_tile, kKStride, args.v, b, k0, n, kv_head, kKeys);
    stage_rows_transposed<kD, kThreads>(kt_tile, kKtStride, args.k, b, k0, n, kv_head, kKeys);
    __syncthreads();
    // ds = p (dp - delta), p = exp(scaled score - lse), dp = dout . v; per 8-key tile.
    MmaAccumulator ds[kKeyTiles];
    KILN_UNROLL
    for (int t = 0; t < kKeyTiles; ++t) {
      MmaAccumulator score, dp;
      scores_and_dp(score, dp, q, k_tile, dout, v_tile, kKStride, t);
      KILN_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const int64_t key = k0 + 8 * t + 2 * member_of_lane() + (e & 1);
        const bool visible = key >= lo[r] && key < hi[r];
        const float p = visible ? exp2f(score.reg[e] * scale_log2 - lse[r]) : 0.0f;
        ds[t].reg[e] = p * (dp.reg[e] - delta[r]);
      }
    }
    KILN_UNROLL
    for (int j = 0; j < kKeyTiles / 2; ++j) {
      const MmaFragmentA a = a_from_accumulators(ds[2 * j], ds[2 * j + 1]);
      KILN_UNROLL
      for (int t = 0; t < kDTiles; ++t) mma_m16n8k16(dq[t], a, b_from_shared(kt_tile, kKtStride, 8 * t, 16 * j), dq[t]);
    }
  }
  bf16* dq_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) dq_row[r] = i0 + slot[r] < shape.tq ? args.dq.row(b, i0 + slot[r], h) : nullptr;
  store_rows(dq_row[0], dq_row[1], dq, shape.scale);
}

// ---- backward: dk, dv -------------------------------------------------------------------------

template <int kD, int kWarps>
__global__ void __launch_bounds__(BlockShape<kWarps>::kThreads)
    flash_dkdv_kernel(AttentionShape shape, AttentionBackward<bf16> args) {
  constexpr int kThreads = BlockShape<kWarps>::kThreads, kBlockRows = BlockShape<kWarps>::kRows;
  constexpr int kQueries = 64;  // queries per tile
  constexpr int kRowStride = kD + kPad, kTStride = kQueries + kPad;
  constexpr int kDSteps = kD / 16, kDTiles = kD / 8, kQueryTiles = kQueries / 8;
  __align__(16) __shared__ bf16 q_tile[kQueries * kRowStride];     // [query][d]
  __align__(16) __shared__ bf16 dout_tile[kQueries * kRowStride];  // [query][d]
  __align__(16) __shared__ bf16 qt_tile[kD * kTStride];            // [d][query]
  __align__(16) __shared__ bf16 doutt_tile[kD * kTStride];         // [d][query]
  __shared__ float delta_of[kQueries], lse_of[kQueries];
  __shared__ int64_t key_lo[kBlockRows], key_hi[kBlockRows];

  const int64_t b = blockIdx.z, kv_head = blockIdx.y, k0 = int64_t{blockIdx.x} * kBlockRows;
  const int64_t n = smaller(kBlockRows, shape.tk - k0), group = shape.heads / shape.kv_heads;
  const int64_t offset = shape.tk - shape.tq;
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  // The run of each key of the block: query position p sees key j when lo_j <= p < hi_j (and,
  // when causal, j <= p). The first half of the warps take 32 keys each.
  if (warp_id() < kWarps / 2) {
    const int64_t first = k0 + 32 * warp_id(), count = smaller(32, shape.tk - first);
    KeyRange run{0, shape.tk};
    if (count > 0) run = key_run(doc, first, count, shape.tk);
    key_lo[32 * warp_id() + lane_id()] = run.lo, key_hi[32 * warp_id() + lane_id()] = run.hi;
  }
  __syncthreads();
  const int64_t first_position = shape.causal ? k0 : key_lo[0];
  const int64_t last_position = key_hi[n - 1];
  const int64_t first_query = larger(0, first_position - offset);
  const int64_t queries = larger(0, smaller(shape.tq, last_position - offset) - first_query);

  const int slot[2] = {warp_id() * kWarpRows + group_of_lane(), warp_id() * kWarpRows + group_of_lane() + 8};
  int64_t key[2], lo[2], hi[2];
  const bf16 *k_row[2], *v_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    key[r] = k0 + slot[r];
    lo[r] = key_lo[slot[r]], hi[r] = key_hi[slot[r]];
    const bool real = slot[r] < n;
    if (!real) hi[r] = lo[r];  // sees no query
    k_row[r] = real ? args.k.row(b, key[r], kv_head) : nullptr;
    v_row[r] = real ? args.v.row(b, key[r], kv_head) : nullptr;
  }
  MmaFragmentA k[kDSteps], v[kDSteps];
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) {
    k[s] = a_from_rows(k_row[0], k_row[1], 16 * s);
    v[s] = a_from_rows(v_row[0], v_row[1], 16 * s);
  }
  MmaAccumulator dk[kDTiles], dv[kDTiles];
  KILN_UNROLL
  for (int t = 0; t < kDTiles; ++t) dk[t] = zero_accumulator(), dv[t] = zero_accumulator();
  const float scale_log2 = shape.scale * kLog2e;
  const int64_t tiles_per_head = (queries + kQueries - 1) / kQueries;

  for (int64_t item = 0; item < group * tiles_per_head; ++item) {
    const int64_t h = kv_head * group + item / tiles_per_head;
    const int64_t q0 = first_query + (item % tiles_per_head) * kQueries;
    const int64_t count = smaller(kQueries, first_query + queries - q0);
    __syncthreads();  // the previous tile is read
    stage_rows<kD, kThreads>(q_tile, kRowStride, args.q, b, q0, count, h, kQueries);
    stage_rows<kD, kThreads>(dout_tile, kRowStride, args.dout, b, q0, count, h, kQueries);
    stage_rows_transposed<kD, kThreads>(qt_tile, kTStride, args.q, b, q0, count, h, kQueries);
    stage_rows_transposed<kD, kThreads>(doutt_tile, kTStride, args.dout, b, q0, count, h, kQueries);
    query_statistics<kD, kThreads, kQueries>(shape, args, b, h, q0, delta_of, lse_of);
    __syncthreads();

    // Transposed: rows are this warp's keys, columns the tile's queries.
    MmaAccumulator p[kQueryTiles], ds[kQueryTiles];
    KILN_UNROLL
    for (int t = 0; t < kQueryTiles; ++t) {
      MmaAccumulator score, dp;
      scores_and_dp(score, dp, k, q_tile, v, dout_tile, kRowStride, t);
      KILN_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1, column = 8 * t + 2 * member_of_lane() + (e & 1);
        const int64_t position = offset + q0 + column;
        const bool visible = column < count && lo[r] <= position && position < hi[r] &&
                             (!shape.causal || key[r] <= position);
        const float probability = visible ? exp2f(score.reg[e] * scale_log2 - lse_of[column]) : 0.0f;
        p[t].reg[e] = probability;
        ds[t].reg[e] = probability * (dp.reg[e] - delta_of[column]);
      }
    }
    KILN_UNROLL
    for (int j = 0; j < kQueryTiles / 2; ++j) {
      const MmaFragmentA pa = a_from_accumulators(p[2 * j], p[2 * j + 1]);
      const MmaFragmentA dsa = a_from_accumulators(ds[2 * j], ds[2 * j + 1]);
      KILN_UNROLL
      for (int t = 0; t < kDTiles; ++t) {
        mma_m16n8k16(dv[t], pa, b_from_shared(doutt_tile, kTStride, 8 * t, 16 * j), dv[t]);
        mma_m16n8k16(dk[t], dsa, b_from_shared(qt_tile, kTStride, 8 * t, 16 * j), dk[t]);
      }
    }
  }
  bf16 *dk_row[2], *dv_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    const bool real = slot[r] < n;
    dk_row[r] = real ? args.dk.row(b, key[r], kv_head) : nullptr;
    dv_row[r] = real ? args.dv.row(b, key[r], kv_head) : nullptr;
  }
  store_rows(dk_row[0], dk_row[1], dk, shape.scale);
  store_rows(dv_row[0], dv_row[1], dv, 1.0f);
}

// ---- eligibility and launches -----------------------------------------------------------------

template <class T>
bool rows_aligned(const HeadTensor<T>& x) {
  const auto address = reinterpret_cast<std::uintptr_t>(x.data);
  return address % 16 == 0 && x.batch_stride % 8 == 0 && x.seq_stride % 8 == 0 && x.head_stride % 8 == 0;
}

unsigned tiles(int64_t count, int64_t tile) { return static_cast<unsigned>((count + tile - 1) / tile); }

template <int kWarps>
void launch_forward(const AttentionShape& shape, const AttentionForward<bf16>& args, cudaStream_t stream) {
  using Block = BlockShape<kWarps>;
  const dim3 grid(tiles(shape.tq, Block::kRows), static_cast<unsigned>(shape.heads), static_cast<unsigned>(shape.batch));
  if (shape.dim == 64) {
    KILN_LAUNCH_NAMED("flash_forward_kernel", (&flash_forward_kernel<64, kWarps>), grid, dim3(Block::kThreads), 0, stream, shape, args);
  } else {
    KILN_LAUNCH_NAMED("flash_forward_kernel", (&flash_forward_kernel<128, kWarps>), grid, dim3(Block::kThreads), 0, stream, shape, args);
  }
}

template <int kWarps>
void launch_backward(const AttentionShape& shape, const AttentionBackward<bf16>& args, cudaStream_t stream) {
  using Block = BlockShape<kWarps>;
  if (shape.tq > 0) {
    const dim3 grid(tiles(shape.tq, Block::kRows), static_cast<unsigned>(shape.heads), static_cast<unsigned>(shape.batch));
    KILN_LAUNCH_NAMED("flash_dq_kernel", (&flash_dq_kernel<64, kWarps>), grid, dim3(Block::kThreads), 0, stream, shape, args);
  }
  const dim3 grid(tiles(shape.tk, Block::kRows), static_cast<unsigned>(shape.kv_heads), static_cast<unsigned>(shape.batch));
  KILN_LAUNCH_NAMED("flash_dkdv_kernel", (&flash_dkdv_kernel<64, kWarps>), grid, dim3(Block::kThreads), 0, stream, shape, args);
}

}  // namespace

bool flash_attention_forward_supports(const AttentionShape& shape, const AttentionForward<bf16>& args) {
  return (shape.dim == 64 || shape.dim == 128) && rows_aligned(args.out) && rows_aligned(args.q) &&
         rows_aligned(args.k) && rows_aligned(args.v);
}

bool flash_attention_backward_supports(const AttentionShape& shape, const AttentionBackward<bf16>& args) {
  return shape.dim == 64 && rows_aligned(args.dq) && rows_aligned(args.dk) && rows_aligned(args.dv) &&
         rows_aligned(args.dout) && rows_aligned(args.q) && rows_aligned(args.k) && rows_aligned(args.v) &&
         rows_aligned(args.out);
}

void set_flash_attention_block_warps(int warps) {
  if (warps != 4 && warps != 8)
    cuda_launch::fail_kernel_argument("flash_attention", "a block is 4 or 8 warps");
  block_warps = warps;
}

int flash_attention_block_warps() { return block_warps; }

// Shapes and pointers were checked by attention.cu's launchers, which call these.
void flash_attention_forward(const AttentionShape& shape, const AttentionForward<bf16>& args, cudaStream_t stream) {
  if (block_warps == 8) return launch_forward<8>(shape, args, stream);
  launch_forward<4>(shape, args, stream);
}

void flash_attention_backward(const AttentionShape& shape, const AttentionBackward<bf16>& args, cudaStream_t stream) {
  if (block_warps == 8) return launch_backward<8>(shape, args, stream);
  launch_backward<4>(shape, args, stream);
}

}  // namespace kiln::KILN_CUDA_NS
