// The forward of tensor-core attention on Hopper's warpgroup MMA (wgmma, sm_90a): the same
// tensors, semantics and results as flash_attention.cu's mma.sync forward (flash_attention.hpp),
// with the products issued per warpgroup straight from shared memory.
//
//   grid (Tq / (64 G), Hq, B), a block G warpgroups (1 or 2: 4 or 8 warps), warpgroup g owning
//   queries i0 + 64g .. + 63 (warp w its rows 16w .. 16w + 15, as in the mma.sync kernels).
//   Per 64-key tile of the keys the block's queries see:
//     S (64 x 64) = Q K^T      kD / 16 wgmma m64n64k16: A = the warpgroup's q fragments
//                              (registers, loaded once), B = the k tile (K-major: rows of d)
//     online softmax of S in registers (flash_attention_tiles.cuh, shared with mma.sync)
//     O (64 x kD) += P V       4 x kD / 64 wgmma: A = P rounded to bf16 (registers), B = the
//                              v tile (N-major: its rows of d are B's rows)
// K and V tiles stream through three stages by cp.async, the next in flight while the block
// computes on this one and the one before may still be read by a warpgroup that lags: so one
// barrier per tile (after the wait) suffices, and the warpgroups of a block drift apart by up to
// a tile, one's softmax overlapping the other's products. Tiles are stored as the canonical no-swizzle layout of the wgmma descriptors: 8 x 8 core
// matrices of 128 contiguous bytes, core (i, j) (rows 8i.., columns 8j..) at 128 (i kD / 8 + j).
// A warp's 16-byte copies fill 512 consecutive bytes, so staging has no bank conflicts, and a
// core matrix sits on all 32 banks for the tensor cores' reads.
#include "kernels/cuda/flash_attention.hpp"

#include "kernels/cuda/flash_attention_tiles.cuh"
#include "kernels/cuda/warpgroup_mma.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

using namespace attention_detail;
using namespace flash_detail;
using bf16 = __nv_bfloat16;
using std::int64_t;

constexpr int kWarpgroupRows = 64;  // M of wgmma.m64n64k16
constexpr std::uint32_t kCoreBytes = 128;
constexpr int kStages = 3;

// A 64-row tile of head dim kD in core matrices.
template <int kD>
struct CoreTile {
  static constexpr int kElements = kTileRows * kD;
  static constexpr int kCoreColumns = kD / 8;
  static constexpr std::uint32_t kRowGroupBytes = kCoreColumns * kCoreBytes;  // from rows 8i.. to 8i + 8..
};

// Rows t0 .. t0 + 63 of head h of x into a core tile by cp.async, thread e (and e + kThreads,
// ...) copying the e-th 16 bytes of the tile; rows r >= n are zero-filled, their source unread.
template <int kD, int kThreads>
__device__ void stage_core_tile(bf16* dst, const HeadTensor<const bf16>& x, int64_t b, int64_t t0, int64_t n,
                                int64_t h) {
  using Layout = CoreTile<kD>;
  for (int e = static_cast<int>(threadIdx.x); e < Layout::kElements / 8; e += kThreads) {
    const int core = e / 8, r = core / Layout::kCoreColumns * 8 + e % 8, word = core % Layout::kCoreColumns;
    const bool real = r < n;
    async_copy_16(dst + 8 * e, x.row(b, real ? t0 + r : t0, h) + 8 * word, real);
  }
}

// k and v of the key tile from k0 into stage `stage` (k, then v), as one cp.async group.
template <int kD, int kThreads>
__device__ void stage_key_tile(bf16* tiles, int stage, const AttentionShape& shape, const AttentionForward<bf16>& args,
                               int64_t b, int64_t kv_head, int64_t k0) {
  const int64_t n = smaller(kTileRows, shape.tk - k0);
  bf16* const k_tile = tiles + 2 * stage * CoreTile<kD>::kElements;
  stage_core_tile<kD, kThreads>(k_tile, args.k, b, k0, n, kv_head);
  stage_core_tile<kD, kThreads>(k_tile + CoreTile<kD>::kElements, args.v, b, k0, n, kv_head);
  async_copy_commit();
}

// This thread's copies of the current tile have landed (the next stays in flight); its bytes
// are ordered for the tensor cores' async proxy, and the barrier makes every thread's visible.
__device__ __forceinline__ void wait_for_tile_for_wgmma(bool next_in_flight) {
  if (next_in_flight) {
    async_copy_wait<1>();
  } else {
    async_copy_wait<0>();
  }
  fence_shared_for_async_proxy();
  __syncthreads();
}

// B of k-step s (d = 16s ..) of S = Q K^T: the k tile, N = 64 keys (row groups stride apart),
// K = d (core columns 2s, 2s + 1, leading bytes apart).
template <int kD>
__device__ __forceinline__ std::uint64_t keys_operand(const bf16* k_tile, int s) {
  return shared_matrix_descriptor(k_tile + 2 * s * kCoreBytes / sizeof(bf16), kCoreBytes, CoreTile<kD>::kRowGroupBytes);
}
// B of k-step j (keys 16j ..) and output chunk c (d = 64c ..) of O += P V: the v tile N-major,
// N = d (core columns 8c .. 8c + 7, stride bytes apart), K = keys (row groups 2j, 2j + 1).
template <int kD>
__device__ __forceinline__ std::uint64_t values_operand(const bf16* v_tile, int j, int c) {
  const std::uint32_t bytes = 2 * j * CoreTile<kD>::kRowGroupBytes + 8 * c * kCoreBytes;
  return shared_matrix_descriptor(v_tile + bytes / sizeof(bf16), CoreTile<kD>::kRowGroupBytes, kCoreBytes);
}

template <int kD, int kWarpgroups>
__global__ void __launch_bounds__(kWarpgroups * kWarpgroupThreads)
    flash_forward_wgmma_kernel(AttentionShape shape, AttentionForward<bf16> args) {
  constexpr int kThreads = kWarpgroups * kWarpgroupThreads, kBlockRows = kWarpgroups * kWarpgroupRows;
  constexpr int kDSteps = kD / 16, kChunks = kD / kWarpgroupTileColumns, kKeySteps = kTileRows / 16;
  KILN_DYNAMIC_SHARED(bf16, tiles);  // kStages stages of k and v core tiles
  __shared__ int64_t range_lo[kBlockRows], range_hi[kBlockRows];

  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = int64_t{blockIdx.x} * kBlockRows;
  const int64_t kv_head = h / (shape.heads / shape.kv_heads);
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  query_ranges(shape, doc, i0, range_lo, range_hi);
  __syncthreads();
  const KeyRange block_keys = union_of(range_lo, range_hi, kBlockRows);
  const int64_t key_tiles = tile_count(block_keys.lo, block_keys.hi);
  if (key_tiles > 0) stage_key_tile<kD, kThreads>(tiles, 0, shape, args, b, kv_head, block_keys.lo);

  const LaneRows lane = lane_rows();
  const auto& slot = lane.slot;
  LaneQueries<kDSteps> queries;
  load_lane_queries(queries, shape, args, b, h, i0, slot, range_lo, range_hi);
  const auto &lo = queries.lo, &hi = queries.hi;
  auto& q = queries.q;  // pinned before each wgmma.fence (warpgroup_keep_fragment)

  WarpgroupAccumulator out[kChunks];
  KILN_UNROLL
  for (int c = 0; c < kChunks; ++c) {
    KILN_UNROLL
    for (int t = 0; t < kWarpgroupTileColumns / 8; ++t) out[c][t] = zero_accumulator();
  }
  float running_max[2] = {kNegativeInfinity, kNegativeInfinity}, running_sum[2] = {0.0f, 0.0f};
  const float scale_log2 = shape.scale * kLog2e;

  for (int64_t tile = 0; tile < key_tiles; ++tile) {
    const int64_t k0 = block_keys.lo + tile * kTileRows;
    const bool next = tile + 1 < key_tiles;
    // The next tile's stage was last read two tiles ago, before every thread passed the
    // previous tile's barrier.
    if (next)
      stage_key_tile<kD, kThreads>(tiles, static_cast<int>((tile + 1) % kStages), shape, args, b, kv_head,
                                   k0 + kTileRows);
    wait_for_tile_for_wgmma(next);
    const bf16* const k_tile = tiles + 2 * (tile % kStages) * CoreTile<kD>::kElements;
    const bf16* const v_tile = k_tile + CoreTile<kD>::kElements;

    WarpgroupAccumulator score;
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s) warpgroup_keep_fragment(q[s]);
    warpgroup_fence();
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s) warpgroup_mma<false>(score, q[s], keys_operand<kD>(k_tile, s), s > 0);
    warpgroup_commit();
    warpgroup_wait<0>(score);

    const bool unmasked = warp_sees_whole_tile(lo, hi, k0);
    const RowFactors correction = online_softmax_step(score, lo, hi, k0, unmasked, scale_log2, running_max, running_sum);
    MmaFragmentA p[kKeySteps];
    KILN_UNROLL
    for (int j = 0; j < kKeySteps; ++j) {
      p[j] = a_from_accumulators(score[2 * j], score[2 * j + 1]);
      warpgroup_keep_fragment(p[j]);
    }
    KILN_UNROLL
    for (int c = 0; c < kChunks; ++c) {
      scale_rows(out[c], correction);
      warpgroup_keep_registers(out[c]);
    }
    warpgroup_fence();
    KILN_UNROLL
    for (int j = 0; j < kKeySteps; ++j) {
      KILN_UNROLL
      for (int c = 0; c < kChunks; ++c) warpgroup_mma<true>(out[c], p[j], values_operand<kD>(v_tile, j, c), true);
    }
    warpgroup_commit();
    warpgroup_wait<0>(out[0]);
    KILN_UNROLL
    for (int c = 1; c < kChunks; ++c) warpgroup_keep_registers(out[c]);
  }

  const RowFactors inverse = finish_softmax_rows(shape, args, b, h, i0, slot, running_max, running_sum);
  KILN_UNROLL
  for (int c = 0; c < kChunks; ++c) {
    scale_rows(out[c], inverse);
    bf16* out_row[2];
    KILN_UNROLL
    for (int r = 0; r < 2; ++r)
      out_row[r] = i0 + slot[r] < shape.tq ? args.out.row(b, i0 + slot[r], h) + kWarpgroupTileColumns * c : nullptr;
    store_rows(out_row[0], out_row[1], out[c], 1.0f);
  }
}

template <int kD, int kWarpgroups>
void launch_wgmma_forward(const AttentionShape& shape, const AttentionForward<bf16>& args, cudaStream_t stream) {
  constexpr std::size_t kSharedBytes = kStages * 2 * CoreTile<kD>::kElements * sizeof(bf16);  // (k, v) per stage
  const dim3 grid(tiles(shape.tq, kWarpgroups * kWarpgroupRows), static_cast<unsigned>(shape.heads),
                  static_cast<unsigned>(shape.batch));
  launch_with_shared<kSharedBytes>("flash_forward_wgmma_kernel", &flash_forward_wgmma_kernel<kD, kWarpgroups>, grid,
                                   kWarpgroups * kWarpgroupThreads, shape, args, stream);
}

template <int kWarpgroups>
void launch_wgmma_forward_for_dim(const AttentionShape& shape, const AttentionForward<bf16>& args, cudaStream_t stream) {
  if (shape.dim == 64) return launch_wgmma_forward<64, kWarpgroups>(shape, args, stream);
  launch_wgmma_forward<128, kWarpgroups>(shape, args, stream);
}

}  // namespace

void flash_attention_forward_wgmma(const AttentionShape& shape, const AttentionForward<bf16>& args, int warps,
                                   cudaStream_t stream) {
  if (warps == 8) return launch_wgmma_forward_for_dim<2>(shape, args, stream);
  launch_wgmma_forward_for_dim<1>(shape, args, stream);
}

}  // namespace kiln::KILN_CUDA_NS
