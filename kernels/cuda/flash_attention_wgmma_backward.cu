// The backward of tensor-core attention on Hopper's warpgroup MMA (wgmma, sm_90a): the same
// tensors, semantics and results as flash_attention.cu's mma.sync backward, deterministic (no
// atomics, a fixed order per output element). Two kernels, as there:
//
//   dq    grid (Tq / (64 G), Hq, B), warpgroup g owning queries i0 + 64g ..; per key tile of
//         64 that the block's queries see (three cp.async stages, one barrier per tile):
//           S  = Q K^T       A = q (registers), B = the k tile over the head dim
//           dP = dO V^T      A = dout (registers), B = the v tile over the head dim
//           dS = P (dP - delta), P = exp2(S scale log2e - lse)     (registers)
//           dQ += dS K       A = dS (registers), B = the k tile over its rows
//   dk/dv grid (Tk / (64 G), Hkv, B), warpgroup g owning keys k0 + 64g .., their k and v rows
//         staged once; per (query head of the group, query tile of 64) that sees them (two
//         stages, a barrier after each item):
//           S^T  = K Q^T     A = k rows (shared), B = the q tile over the head dim
//           dP^T = V dO^T    A = v rows (shared), B = the dout tile over the head dim
//           P^T, dS^T        (registers)
//           dV += P^T dO     A = P^T (registers), B = the dout tile over its rows
//           dK += dS^T Q     A = dS^T (registers), B = the q tile over its rows
#include "kernels/cuda/flash_attention.hpp"

#include "kernels/cuda/flash_attention_wgmma_tiles.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

using namespace attention_detail;
using namespace flash_detail;
using bf16 = __nv_bfloat16;
using std::int64_t;

// ---- dq ---------------------------------------------------------------------------------------

template <int kD, int kWarpgroups>
__global__ void __launch_bounds__(kWarpgroups * kWarpgroupThreads)
    flash_dq_wgmma_kernel(AttentionShape shape, AttentionBackward<bf16> args) {
  constexpr int kThreads = kWarpgroups * kWarpgroupThreads, kBlockRows = kWarpgroups * kWarpgroupRows;
  constexpr int kDSteps = kD / 16, kChunks = kD / kWarpgroupTileColumns;
  KILN_DYNAMIC_SHARED(bf16, tiles);  // kStages stages of k and v core tiles
  __shared__ int64_t range_lo[kBlockRows], range_hi[kBlockRows];
  __shared__ float delta_of[kBlockRows], lse_of[kBlockRows];

  const QueryBlock block = begin_query_block<kBlockRows>(shape, args.doc_ids, range_lo, range_hi,
                                                         [&](const QueryBlock& rows) {
    query_statistics<kD, kThreads, kBlockRows>(shape, args, rows.b, rows.h, rows.i0, delta_of, lse_of);
  });
  const int64_t b = block.b, h = block.h, i0 = block.i0, kv_head = block.kv_head, key_tiles = block.key_tiles;
  if (key_tiles > 0) stage_key_tile<kD, kThreads>(tiles, 0, shape, args.k, args.v, b, kv_head, block.first_key);

  const LaneRows lane = lane_rows();
  const auto& slot = lane.slot;
  LaneGradientQueries<kDSteps> queries;
  load_lane_gradient_queries(queries, shape, args, b, h, i0, slot, range_lo, range_hi, delta_of, lse_of);
  const auto &lo = queries.lo, &hi = queries.hi;
  const auto &delta = queries.delta, &lse = queries.lse;
  auto &q = queries.q, &dout = queries.dout;  // pinned before each wgmma.fence
  WarpgroupAccumulator dq[kChunks];
  zero_chunks(dq);
  const float scale_log2 = shape.scale * kLog2e;

  for (int64_t tile = 0; tile < key_tiles; ++tile) {
    const auto [k0, k_tile, v_tile] = next_key_tile_for_wgmma<kD, kThreads>(tiles, tile, key_tiles, block.first_key, shape,
                                                                            args.k, args.v, b, kv_head);

    WarpgroupAccumulator ds, dp;  // the scores, then ds in place
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s) warpgroup_keep_fragment(q[s]), warpgroup_keep_fragment(dout[s]);
    warpgroup_fence();
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s) warpgroup_mma<false>(ds, q[s], operand_over_head_dim<kD>(k_tile, s), s > 0);
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s) warpgroup_mma<false>(dp, dout[s], operand_over_head_dim<kD>(v_tile, s), s > 0);
    warpgroup_commit();
    warpgroup_wait<0>(ds);
    warpgroup_keep_registers(dp);

    score_gradients(ds, dp, lo, hi, k0, warp_sees_whole_tile(lo, hi, k0), scale_log2, lse, delta);
    MmaFragmentA ds_fragments[kTileRows / 16];
    fragments_of(ds_fragments, ds);
    KILN_UNROLL
    for (int c = 0; c < kChunks; ++c) warpgroup_keep_registers(dq[c]);
    warpgroup_fence();
    accumulate_over_rows<kD>(dq, ds_fragments, k_tile);
    warpgroup_commit();
    wait_for_chunks(dq);
  }
  bf16* dq_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) dq_row[r] = i0 + slot[r] < shape.tq ? args.dq.row(b, i0 + slot[r], h) : nullptr;
  store_chunks(dq_row[0], dq_row[1], dq, shape.scale);
}

// ---- dk, dv -----------------------------------------------------------------------------------

// The query tile of one work item (query head h, queries q0 .. q0 + count - 1): q and dout into
// stage `stage` as one cp.async group, their delta and log2 lse into the stage's rows of
// delta_of / lse_of.
template <int kD, int kThreads>
__device__ void stage_query_tile(bf16* tiles, float* delta_of, float* lse_of, int stage, const AttentionShape& shape,
                                 const AttentionBackward<bf16>& args, int64_t b, int64_t h, int64_t q0, int64_t count) {
  stage_tile_pair<kD, kThreads>(tiles, stage, args.q, args.dout, b, q0, count, h);
  query_statistics<kD, kThreads, kTileRows>(shape, args, b, h, q0, delta_of + stage * kTileRows,
                                            lse_of + stage * kTileRows);
}

template <int kD, int kWarpgroups>
__global__ void __launch_bounds__(kWarpgroups * kWarpgroupThreads)
    flash_dkdv_wgmma_kernel(AttentionShape shape, AttentionBackward<bf16> args) {
  constexpr int kThreads = kWarpgroups * kWarpgroupThreads, kBlockRows = kWarpgroups * kWarpgroupRows;
  constexpr int kWarps = kThreads / 32;
  constexpr int kDSteps = kD / 16, kChunks = kD / kWarpgroupTileColumns, kQueryTiles = kTileRows / 8;
  // Two stages of q and dout core tiles, then the block's k and v rows (kBlockRows each).
  KILN_DYNAMIC_SHARED(bf16, tiles);
  bf16* const k_rows = tiles + 4 * CoreTile<kD>::kElements;
  bf16* const v_rows = k_rows + kBlockRows * kD;
  __shared__ float delta_of[2 * kTileRows], lse_of[2 * kTileRows];
  __shared__ int64_t key_lo[kBlockRows], key_hi[kBlockRows];

  const int64_t b = blockIdx.z, k0 = int64_t{blockIdx.x} * kBlockRows;
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  const KeyBlockWork work = key_block_work<kWarps, kBlockRows>(shape, doc, blockIdx.y, k0, key_lo, key_hi);
  const int64_t kv_head = work.kv_head, n = work.n, offset = work.offset;
  stage_core_tile<kD, kThreads, kBlockRows>(k_rows, args.k, b, k0, n, kv_head);
  stage_core_tile<kD, kThreads, kBlockRows>(v_rows, args.v, b, k0, n, kv_head);
  async_copy_commit();  // completes before the first query tile's group (groups land in order)
  if (work.items > 0)
    stage_query_tile<kD, kThreads>(tiles, delta_of, lse_of, 0, shape, args, b, work.head(0), work.first(0),
                                   work.count(0));

  const LaneRows lane = lane_rows();
  const auto& slot = lane.slot;
  const LaneKeys keys = lane_keys(shape, work, slot, key_lo, key_hi);
  const auto &key = keys.key, &lo = keys.lo, &hi = keys.hi;
  // This warpgroup's 64 keys of the block's rows.
  const bf16* const my_k = k_rows + warpgroup_id() * kWarpgroupRows * kD;
  const bf16* const my_v = v_rows + warpgroup_id() * kWarpgroupRows * kD;
  WarpgroupAccumulator dk[kChunks], dv[kChunks];
  zero_chunks(dk);
  zero_chunks(dv);
  const float scale_log2 = shape.scale * kLog2e;

  for (int64_t item = 0; item < work.items; ++item) {
    const int64_t q0 = work.first(item), count = work.count(item);
    const bool next = item + 1 < work.items;
    const int stage = static_cast<int>(item & 1);
    if (next)
      stage_query_tile<kD, kThreads>(tiles, delta_of, lse_of, stage ^ 1, shape, args, b, work.head(item + 1),
                                     work.first(item + 1), work.count(item + 1));
    wait_for_tile_for_wgmma(next);
    const bf16* const q_tile = tiles + 2 * stage * CoreTile<kD>::kElements;
    const bf16* const dout_tile = q_tile + CoreTile<kD>::kElements;
    const float* const tile_delta = delta_of + stage * kTileRows;
    const float* const tile_lse = lse_of + stage * kTileRows;

    // Transposed: rows are this warp's keys, columns the tile's queries.
    WarpgroupAccumulator p, ds;  // S^T, then P^T; dP^T, then dS^T
    warpgroup_fence();
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s)
      warpgroup_mma<false>(p, operand_over_head_dim<kD>(my_k, s), operand_over_head_dim<kD>(q_tile, s), s > 0);
    KILN_UNROLL
    for (int s = 0; s < kDSteps; ++s)
      warpgroup_mma<false>(ds, operand_over_head_dim<kD>(my_v, s), operand_over_head_dim<kD>(dout_tile, s), s > 0);
    warpgroup_commit();
    warpgroup_wait<0>(p);
    warpgroup_keep_registers(ds);

    const bool unmasked = count == kTileRows && warp_sees_whole_tile(lo, hi, offset + q0);
    KILN_UNROLL
    for (int t = 0; t < kQueryTiles; ++t) {
      KILN_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1, column = 8 * t + 2 * member_of_lane() + (e & 1);
        const int64_t position = offset + q0 + column;
        const bool visible = unmasked || (column < count && lo[r] <= position && position < hi[r]);
        const float probability = visible ? exp2f(p[t].reg[e] * scale_log2 - tile_lse[column]) : 0.0f;
        p[t].reg[e] = probability;
        ds[t].reg[e] = probability * (ds[t].reg[e] - tile_delta[column]);
      }
    }
    MmaFragmentA p_fragments[kTileRows / 16], ds_fragments[kTileRows / 16];
    fragments_of(p_fragments, p);
    fragments_of(ds_fragments, ds);
    KILN_UNROLL
    for (int c = 0; c < kChunks; ++c) warpgroup_keep_registers(dv[c]), warpgroup_keep_registers(dk[c]);
    warpgroup_fence();
    accumulate_over_rows<kD>(dv, p_fragments, dout_tile);
    accumulate_over_rows<kD>(dk, ds_fragments, q_tile);
    warpgroup_commit();
    wait_for_chunks(dv);
    KILN_UNROLL
    for (int c = 0; c < kChunks; ++c) warpgroup_keep_registers(dk[c]);
    __syncthreads();  // this stage is read: the copy issued next item overwrites it
  }
  bf16 *dk_row[2], *dv_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) {
    const bool real = slot[r] < n;
    dk_row[r] = real ? args.dk.row(b, key[r], kv_head) : nullptr;
    dv_row[r] = real ? args.dv.row(b, key[r], kv_head) : nullptr;
  }
  store_chunks(dk_row[0], dk_row[1], dk, shape.scale);
  store_chunks(dv_row[0], dv_row[1], dv, 1.0f);
}

// ---- launches ---------------------------------------------------------------------------------

template <int kD, int kWarpgroups>
void launch_wgmma_backward(const AttentionShape& shape, const AttentionBackward<bf16>& args, cudaStream_t stream) {
  constexpr int kThreads = kWarpgroups * kWarpgroupThreads, kBlockRows = kWarpgroups * kWarpgroupRows;
  constexpr std::size_t kTileBytes = CoreTile<kD>::kElements * sizeof(bf16);
  if (shape.tq > 0) {
    const dim3 grid(tiles(shape.tq, kBlockRows), static_cast<unsigned>(shape.heads), static_cast<unsigned>(shape.batch));
    launch_with_shared<kStages * 2 * kTileBytes>("flash_dq_wgmma_kernel", &flash_dq_wgmma_kernel<kD, kWarpgroups>, grid,
                                                 kThreads, shape, args, stream);
  }
  const dim3 grid(tiles(shape.tk, kBlockRows), static_cast<unsigned>(shape.kv_heads), static_cast<unsigned>(shape.batch));
  constexpr std::size_t kKeyRowBytes = 2 * kBlockRows * kD * sizeof(bf16);  // k and v
  launch_with_shared<2 * 2 * kTileBytes + kKeyRowBytes>("flash_dkdv_wgmma_kernel",
                                                        &flash_dkdv_wgmma_kernel<kD, kWarpgroups>, grid, kThreads,
                                                        shape, args, stream);
}

}  // namespace

void flash_attention_backward_wgmma(const AttentionShape& shape, const AttentionBackward<bf16>& args, int warps,
                                    cudaStream_t stream) {
  with_wgmma_shape(shape.dim, warps, [&](auto dim, auto warpgroups) {
    launch_wgmma_backward<decltype(dim)::value, decltype(warpgroups)::value>(shape, args, stream);
  });
}

}  // namespace kiln::KILN_CUDA_NS
