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
// K and V tiles stream through three stages by cp.async (flash_attention_wgmma_tiles.cuh), the
// next in flight while the block computes on this one and the one before may still be read by a
// warpgroup that lags: so one barrier per tile (after the wait) suffices, and the warpgroups of
// a block drift apart by up to a tile, one's softmax overlapping the other's products.
#include "kernels/cuda/flash_attention.hpp"

#include "kernels/cuda/flash_attention_wgmma_tiles.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

using namespace attention_detail;
using namespace flash_detail;
using bf16 = __nv_bfloat16;
using std::int64_t;

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
  if (key_tiles > 0) stage_key_tile<kD, kThreads>(tiles, 0, shape, args.k, args.v, b, kv_head, block_keys.lo);

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
    const auto [k0, k_tile, v_tile] = next_key_tile_for_wgmma<kD, kThreads>(tiles, tile, key_tiles, block_keys.lo, shape,
                                                                            args.k, args.v, b, kv_head);

    WarpgroupAccumulator score;
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s) warpgroup_keep_fragment(q[s]);
    warpgroup_fence();
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s) warpgroup_mma<false>(score, q[s], operand_over_head_dim<kD>(k_tile, s), s > 0);
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
      for (int c = 0; c < kChunks; ++c) warpgroup_mma<true>(out[c], p[j], operand_over_rows<kD>(v_tile, j, c), true);
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
