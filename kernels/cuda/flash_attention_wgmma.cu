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
//                              v tile (N-major: its rows of d are B's rows), one tile late
// Tile j's P V is issued after tile j + 1's Q K^T and waited for after its softmax, so the
// tensor cores multiply while the CUDA cores exponentiate (FA3's intra-warpgroup overlap). K and
// V stream through three stages by cp.async (flash_attention_wgmma_tiles.cuh): tile j + 1's copy
// is issued after tile j's barrier into the stage tile j - 2 used, one barrier per tile, and the
// warpgroups of a block drift apart within a tile.
#include "kernels/cuda/flash_attention.hpp"

#include "kernels/cuda/flash_attention_wgmma_tiles.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

using namespace attention_detail;
using namespace flash_detail;
using bf16 = __nv_bfloat16;
using std::int64_t;

// Issues S = Q K^T of a key tile into `score` (kD / 16 k-steps, the first overwriting), after the
// wgmma.fence that orders every register the warpgroup touched, as one commit group.
template <int kD, int kDSteps>
__device__ __forceinline__ void issue_scores(WarpgroupAccumulator& score, MmaFragmentA (&q)[kDSteps],
                                             const bf16* k_tile) {
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) warpgroup_keep_fragment(q[s]);
  warpgroup_fence();
  KILN_UNROLL
  for (int s = 0; s < kDSteps; ++s) warpgroup_mma<false>(score, q[s], operand_over_head_dim<kD>(k_tile, s), s > 0);
  warpgroup_commit();
}

template <int kD, int kWarpgroups>
__global__ void __launch_bounds__(kWarpgroups * kWarpgroupThreads)
    flash_forward_wgmma_kernel(AttentionShape shape, AttentionForward<bf16> args) {
  constexpr int kThreads = kWarpgroups * kWarpgroupThreads, kBlockRows = kWarpgroups * kWarpgroupRows;
  constexpr int kDSteps = kD / 16, kChunks = kD / kWarpgroupTileColumns, kKeySteps = kTileRows / 16;
  KILN_DYNAMIC_SHARED(bf16, tiles);  // kStages stages of k and v core tiles
  __shared__ int64_t range_lo[kBlockRows], range_hi[kBlockRows];

  const QueryBlock block = begin_query_block<kBlockRows>(shape, args.doc_ids, range_lo, range_hi,
                                                         [](const QueryBlock&) {});
  const int64_t b = block.b, h = block.h, i0 = block.i0, kv_head = block.kv_head, key_tiles = block.key_tiles;
  if (key_tiles > 0) stage_key_tile<kD, kThreads>(tiles, 0, shape, args.k, args.v, b, kv_head, block.first_key);

  const LaneRows lane = lane_rows();
  const auto& slot = lane.slot;
  LaneQueries<kDSteps> queries;
  load_lane_queries(queries, shape, args, b, h, i0, slot, range_lo, range_hi);
  const auto &lo = queries.lo, &hi = queries.hi;
  auto& q = queries.q;  // pinned before each wgmma.fence (warpgroup_keep_fragment)

  WarpgroupAccumulator out[kChunks];
  zero_chunks(out);
  float running_max[2] = {kNegativeInfinity, kNegativeInfinity}, running_sum[2] = {0.0f, 0.0f};
  const float scale_log2 = shape.scale * kLog2e;

  // Tile j's O += P V runs on the tensor cores while tile j + 1's softmax runs on the CUDA cores:
  // it is issued after tile j + 1's S and waited for after that softmax (FA3's overlap). The
  // first tile is peeled off, so that every wait of the loop has one shape (ptxas serialises
  // the mmas when it cannot match a wait to its group across branches).
  MmaFragmentA p[kKeySteps];  // the previous tile's probabilities, read by its P V in flight
  const bf16* previous_values = nullptr;
  for (int64_t tile = 0; tile < key_tiles; ++tile) {
    const auto [k0, k_tile, v_tile] = key_tile_then_next_for_wgmma<kD, kThreads>(
        tiles, tile, key_tiles, block.first_key, shape, args.k, args.v, b, kv_head);
    WarpgroupAccumulator score;
    issue_scores<kD>(score, q, k_tile);
    if (tile == 0) {
      warpgroup_wait<0>(score);
      online_softmax_step(score, lo, hi, k0, warp_sees_whole_tile(lo, hi, k0), scale_log2, running_max, running_sum);
    } else {
      accumulate_over_rows<kD>(out, p, previous_values);
      warpgroup_commit();
      warpgroup_wait<1>(score);  // the scores; the previous P V may still run
      const RowFactors correction =
          online_softmax_step(score, lo, hi, k0, warp_sees_whole_tile(lo, hi, k0), scale_log2, running_max, running_sum);
      wait_for_chunks(out);
      KILN_UNROLL
      for (int c = 0; c < kChunks; ++c) {
        scale_rows(out[c], correction);
        warpgroup_keep_registers(out[c]);
      }
    }
    fragments_of(p, score);
    previous_values = v_tile;
  }
  if (key_tiles > 0) {  // the last tile's P V
    warpgroup_fence();
    accumulate_over_rows<kD>(out, p, previous_values);
    warpgroup_commit();
    wait_for_chunks(out);
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

}  // namespace

void flash_attention_forward_wgmma(const AttentionShape& shape, const AttentionForward<bf16>& args, int warps,
                                   cudaStream_t stream) {
  with_wgmma_shape(shape.dim, warps, [&](auto dim, auto warpgroups) {
    launch_wgmma_forward<decltype(dim)::value, decltype(warpgroups)::value>(shape, args, stream);
  });
}

}  // namespace kiln::KILN_CUDA_NS
