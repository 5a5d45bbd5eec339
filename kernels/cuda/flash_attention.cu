// Tensor-core attention kernels (see flash_attention.hpp for what they compute).
//
// Every product is mma.m16n8k16: A 16x16 (row-major), B 16x8, C/D 16x8 f32. A warp owns 16
// rows of the output (queries, or keys for dk/dv) and keeps their A fragments (q, dout, or k,
// v) in registers; the other operand streams through shared memory one 64-row tile at a time,
// row-major ([row][d]) as it lies in global memory, copied by cp.async into one of two stages
// while the block computes on the other. B fragments come out of a tile by ldmatrix: plain
// where the tile's rows are B's columns (k for q k^T), .trans where they are B's rows (v for
// p v), so no tile is ever stored transposed. Scores come out of the first product in the
// accumulator layout, which is also the A layout of the second product (columns 2j and 2j+1
// of the 8-wide tiles are the 16-wide k-step j), so probabilities never leave registers.
//
// Shared rows are padded by 8 bf16 (16 bytes): the 8 row addresses of an ldmatrix phase then
// fall 4 banks apart, on 32 distinct banks.
#include "kernels/cuda/flash_attention.hpp"

#include "kernels/cuda/flash_attention_tiles.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

using namespace attention_detail;
using namespace flash_detail;
using bf16 = __nv_bfloat16;
using std::int64_t;

int block_warps = 4;
FlashKernels kernels = FlashKernels::mma_sync;

// ---- forward ----------------------------------------------------------------------------------

// k and v tiles of one key tile into stage `stage` (k at tiles + 2 stage * kElements, v after
// it), as one cp.async group.
template <int kD, int kThreads>
__device__ void stage_keys_and_values(bf16* tiles, int stage, const AttentionShape& shape,
                                      const HeadTensor<const bf16>& k, const HeadTensor<const bf16>& v, int64_t b,
                                      int64_t kv_head, int64_t k0) {
  const int64_t n = smaller(kTileRows, shape.tk - k0);
  bf16* const k_tile = tiles + 2 * stage * Tile<kD>::kElements;
  stage_tile<kD, kThreads>(k_tile, k, b, k0, n, kv_head);
  stage_tile<kD, kThreads>(k_tile + Tile<kD>::kElements, v, b, k0, n, kv_head);
  async_copy_commit();
}

// Key tile `tile` of a walk over key_tiles tiles from first_key, ready in shared memory: issues
// the copy of the next tile into the other stage (it stays in flight), waits for this one.
template <int kD, int kThreads>
__device__ KeyTile next_key_tile(bf16* tiles, int64_t tile, int64_t key_tiles, int64_t first_key,
                                 const AttentionShape& shape, const HeadTensor<const bf16>& k,
                                 const HeadTensor<const bf16>& v, int64_t b, int64_t kv_head) {
  const int64_t k0 = first_key + tile * kTileRows;
  const bool next = tile + 1 < key_tiles;
  if (next)
    stage_keys_and_values<kD, kThreads>(tiles, static_cast<int>((tile + 1) & 1), shape, k, v, b, kv_head,
                                        k0 + kTileRows);
  wait_for_current_tile(next);
  const bf16* const k_tile = tiles + 2 * (tile & 1) * Tile<kD>::kElements;
  return {k0, k_tile, k_tile + Tile<kD>::kElements};
}

template <int kD, int kWarps>
__global__ void __launch_bounds__(BlockShape<kWarps>::kThreads)
    flash_forward_kernel(AttentionShape shape, AttentionForward<bf16> args) {
  constexpr int kThreads = BlockShape<kWarps>::kThreads, kBlockRows = BlockShape<kWarps>::kRows;
  constexpr int kStride = Tile<kD>::kStride;
  constexpr int kDSteps = kD / 16, kDTiles = kD / 8, kKeyTiles = kTileRows / 8;
  KILN_DYNAMIC_SHARED(bf16, tiles);  // two stages of [key][d] k and v tiles
  __shared__ int64_t range_lo[kBlockRows], range_hi[kBlockRows];

  const QueryBlock block = begin_query_block<kBlockRows>(shape, args.doc_ids, range_lo, range_hi,
                                                         [](const QueryBlock&) {});
  const int64_t b = block.b, h = block.h, i0 = block.i0, kv_head = block.kv_head, key_tiles = block.key_tiles;
  if (key_tiles > 0) stage_keys_and_values<kD, kThreads>(tiles, 0, shape, args.k, args.v, b, kv_head, block.first_key);

  // This lane's fragment rows: queries i0 + slot[0] and i0 + slot[1].
  const LaneRows lane = lane_rows();
  const auto& slot = lane.slot;
  LaneQueries<kDSteps> queries;
  load_lane_queries(queries, shape, args, b, h, i0, slot, range_lo, range_hi);
  const auto &lo = queries.lo, &hi = queries.hi;
  const auto& q = queries.q;

  MmaAccumulator out[kDTiles];
  KILN_UNROLL
  for (int t = 0; t < kDTiles; ++t) out[t] = zero_accumulator();
  // Running max (log2 units of the scaled scores) and this lane's part of the row sum.
  float running_max[2] = {kNegativeInfinity, kNegativeInfinity}, running_sum[2] = {0.0f, 0.0f};
  const float scale_log2 = shape.scale * kLog2e;

  for (int64_t tile = 0; tile < key_tiles; ++tile) {
    const auto [k0, k_tile, v_tile] =
        next_key_tile<kD, kThreads>(tiles, tile, key_tiles, block.first_key, shape, args.k, args.v, b, kv_head);

    MmaAccumulator score[kKeyTiles];
    products_with_tile(score, q, k_tile, kStride);
    const bool unmasked = warp_sees_whole_tile(lo, hi, k0);
    scale_rows(out, online_softmax_step(score, lo, hi, k0, unmasked, scale_log2, running_max, running_sum));
    KILN_UNROLL
    for (int j = 0; j < kKeyTiles / 2; ++j)
      mma_row_of_tiles<kDTiles, false>(out, a_from_accumulators(score[2 * j], score[2 * j + 1]), v_tile, 16 * j, kStride);
    __syncthreads();  // this stage is read: the copy issued next iteration overwrites it
  }

  scale_rows(out, finish_softmax_rows(shape, args, b, h, i0, slot, running_max, running_sum));
  bf16* out_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) out_row[r] = i0 + slot[r] < shape.tq ? args.out.row(b, i0 + slot[r], h) : nullptr;
  store_rows(out_row[0], out_row[1], out, 1.0f);
}

// ---- backward: dq -----------------------------------------------------------------------------

template <int kD, int kWarps>
__global__ void __launch_bounds__(BlockShape<kWarps>::kThreads)
    flash_dq_kernel(AttentionShape shape, AttentionBackward<bf16> args) {
  constexpr int kThreads = BlockShape<kWarps>::kThreads, kBlockRows = BlockShape<kWarps>::kRows;
  constexpr int kStride = Tile<kD>::kStride;
  constexpr int kDSteps = kD / 16, kDTiles = kD / 8, kKeyTiles = kTileRows / 8;
  KILN_DYNAMIC_SHARED(bf16, tiles);  // two stages of [key][d] k and v tiles
  __shared__ int64_t range_lo[kBlockRows], range_hi[kBlockRows];
  __shared__ float delta_of[kBlockRows], lse_of[kBlockRows];

  const QueryBlock block = begin_query_block<kBlockRows>(shape, args.doc_ids, range_lo, range_hi,
                                                         [&](const QueryBlock& rows) {
    query_statistics<kD, kThreads, kBlockRows>(shape, args, rows.b, rows.h, rows.i0, delta_of, lse_of);
  });
  const int64_t b = block.b, h = block.h, i0 = block.i0, kv_head = block.kv_head, key_tiles = block.key_tiles;
  if (key_tiles > 0) stage_keys_and_values<kD, kThreads>(tiles, 0, shape, args.k, args.v, b, kv_head, block.first_key);

  const LaneRows lane = lane_rows();
  const auto& slot = lane.slot;
  LaneGradientQueries<kDSteps> queries;
  load_lane_gradient_queries(queries, shape, args, b, h, i0, slot, range_lo, range_hi, delta_of, lse_of);
  const auto &lo = queries.lo, &hi = queries.hi;
  const auto &delta = queries.delta, &lse = queries.lse;
  const auto &q = queries.q, &dout = queries.dout;
  MmaAccumulator dq[kDTiles];
  KILN_UNROLL
  for (int t = 0; t < kDTiles; ++t) dq[t] = zero_accumulator();
  const float scale_log2 = shape.scale * kLog2e;

  for (int64_t tile = 0; tile < key_tiles; ++tile) {
    const auto [k0, k_tile, v_tile] =
        next_key_tile<kD, kThreads>(tiles, tile, key_tiles, block.first_key, shape, args.k, args.v, b, kv_head);

    // ds = p (dp - delta), p = exp(scaled score - lse), dp = dout . v, into the score tiles.
    MmaAccumulator ds[kKeyTiles], dp[kKeyTiles];
    products_with_tile(ds, q, k_tile, kStride);
    products_with_tile(dp, dout, v_tile, kStride);
    score_gradients(ds, dp, lo, hi, k0, warp_sees_whole_tile(lo, hi, k0), scale_log2, lse, delta);
    KILN_UNROLL
    for (int j = 0; j < kKeyTiles / 2; ++j)
      mma_row_of_tiles<kDTiles, false>(dq, a_from_accumulators(ds[2 * j], ds[2 * j + 1]), k_tile, 16 * j, kStride);
    __syncthreads();  // this stage is read: the copy issued next iteration overwrites it
  }
  bf16* dq_row[2];
  KILN_UNROLL
  for (int r = 0; r < 2; ++r) dq_row[r] = i0 + slot[r] < shape.tq ? args.dq.row(b, i0 + slot[r], h) : nullptr;
  store_rows(dq_row[0], dq_row[1], dq, shape.scale);
}

// ---- backward: dk, dv -------------------------------------------------------------------------

// The query tile of one work item (query head h, queries q0 .. q0 + count - 1): q and dout into
// stage `stage` as one cp.async group, and their delta and log2 lse into the stage's rows of
// delta_of / lse_of (plain loads: they are few).
template <int kD, int kThreads>
__device__ void stage_queries(bf16* tiles, float* delta_of, float* lse_of, int stage, const AttentionShape& shape,
                              const AttentionBackward<bf16>& args, int64_t b, int64_t h, int64_t q0, int64_t count) {
  bf16* const q_tile = tiles + 2 * stage * Tile<kD>::kElements;
  stage_tile<kD, kThreads>(q_tile, args.q, b, q0, count, h);
  stage_tile<kD, kThreads>(q_tile + Tile<kD>::kElements, args.dout, b, q0, count, h);
  async_copy_commit();
  query_statistics<kD, kThreads, kTileRows>(shape, args, b, h, q0, delta_of + stage * kTileRows,
                                            lse_of + stage * kTileRows);
}

template <int kD, int kWarps>
__global__ void __launch_bounds__(BlockShape<kWarps>::kThreads)
    flash_dkdv_kernel(AttentionShape shape, AttentionBackward<bf16> args) {
  constexpr int kThreads = BlockShape<kWarps>::kThreads, kBlockRows = BlockShape<kWarps>::kRows;
  constexpr int kStride = Tile<kD>::kStride;
  constexpr int kDSteps = kD / 16, kDTiles = kD / 8, kQueryTiles = kTileRows / 8;
  constexpr int kChunkTiles = kD > 64 ? kQueryTiles / 2 : kQueryTiles;
  // Two stages of [query][d] q and dout tiles, then the block's [key][d] k and v rows: the
  // keys' A fragments come from there (ldmatrix) rather than registers, which dk and dv need.
  KILN_DYNAMIC_SHARED(bf16, tiles);
  bf16* const k_rows = tiles + 4 * Tile<kD>::kElements;
  bf16* const v_rows = k_rows + kBlockRows * kStride;
  __shared__ float delta_of[2 * kTileRows], lse_of[2 * kTileRows];
  __shared__ int64_t key_lo[kBlockRows], key_hi[kBlockRows];

  const int64_t b = blockIdx.z, k0 = int64_t{blockIdx.x} * kBlockRows;
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  const KeyBlockWork work = key_block_work<kWarps, kBlockRows>(shape, doc, blockIdx.y, k0, key_lo, key_hi);
  const int64_t kv_head = work.kv_head, n = work.n, offset = work.offset;
  stage_tile<kD, kThreads, kBlockRows>(k_rows, args.k, b, k0, n, kv_head);
  stage_tile<kD, kThreads, kBlockRows>(v_rows, args.v, b, k0, n, kv_head);
  async_copy_commit();  // completes before the first query tile's group (groups land in order)
  if (work.items > 0)
    stage_queries<kD, kThreads>(tiles, delta_of, lse_of, 0, shape, args, b, work.head(0), work.first(0), work.count(0));

  const LaneRows lane = lane_rows();
  const auto& slot = lane.slot;
  const LaneKeys keys = lane_keys(shape, work, slot, key_lo, key_hi);
  const auto &key = keys.key, &lo = keys.lo, &hi = keys.hi;
  const int row0 = warp_id() * kWarpRows;
  MmaAccumulator dk[kDTiles], dv[kDTiles];
  KILN_UNROLL
  for (int t = 0; t < kDTiles; ++t) dk[t] = zero_accumulator(), dv[t] = zero_accumulator();
  const float scale_log2 = shape.scale * kLog2e;

  for (int64_t item = 0; item < work.items; ++item) {
    const int64_t q0 = work.first(item), count = work.count(item);
    const bool next = item + 1 < work.items;
    const int stage = static_cast<int>(item & 1);
    if (next)
      stage_queries<kD, kThreads>(tiles, delta_of, lse_of, stage ^ 1, shape, args, b, work.head(item + 1),
                                  work.first(item + 1), work.count(item + 1));
    wait_for_current_tile(next);
    const bf16* const q_tile = tiles + 2 * stage * Tile<kD>::kElements;
    const bf16* const dout_tile = q_tile + Tile<kD>::kElements;
    const float* const tile_delta = delta_of + stage * kTileRows;
    const float* const tile_lse = lse_of + stage * kTileRows;

    // Transposed: rows are this warp's keys, columns the tile's queries.
    const bool unmasked = count == kTileRows && warp_sees_whole_tile(lo, hi, offset + q0);
    // The tile in chunks of kChunkTiles 8-query tiles, so that only a chunk's p and ds are live
    // beside dk and dv (a whole tile's at head dim 128 would spill); not unrolled, so the
    // compiler cannot overlap two chunks' scores either.
    KILN_NO_UNROLL
    for (int chunk = 0; chunk < kQueryTiles; chunk += kChunkTiles) {
      const bf16* const q_chunk = q_tile + 8 * chunk * kStride;
      const bf16* const dout_chunk = dout_tile + 8 * chunk * kStride;
      MmaAccumulator p[kChunkTiles], ds[kChunkTiles];
      products_with_tile<kDSteps>(p, k_rows, row0, q_chunk, kStride);
      products_with_tile<kDSteps>(ds, v_rows, row0, dout_chunk, kStride);  // dp, then ds in place
      KILN_UNROLL
      for (int t = 0; t < kChunkTiles; ++t) {
        KILN_UNROLL
        for (int e = 0; e < 4; ++e) {
          const int r = e >> 1, column = 8 * (chunk + t) + 2 * member_of_lane() + (e & 1);
          const int64_t position = offset + q0 + column;
          const bool visible = unmasked || (column < count && lo[r] <= position && position < hi[r]);
          const float probability = visible ? exp2f(p[t].reg[e] * scale_log2 - tile_lse[column]) : 0.0f;
          p[t].reg[e] = probability;
          ds[t].reg[e] = probability * (ds[t].reg[e] - tile_delta[column]);
        }
      }
      KILN_UNROLL
      for (int j = 0; j < kChunkTiles / 2; ++j) {
        mma_row_of_tiles<kDTiles, false>(dv, a_from_accumulators(p[2 * j], p[2 * j + 1]), dout_chunk, 16 * j, kStride);
        mma_row_of_tiles<kDTiles, false>(dk, a_from_accumulators(ds[2 * j], ds[2 * j + 1]), q_chunk, 16 * j, kStride);
      }
    }
    __syncthreads();  // this stage is read: the copy issued next iteration overwrites it
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


template <int kWarps>
void launch_forward(const AttentionShape& shape, const AttentionForward<bf16>& args, cudaStream_t stream) {
  using Block = BlockShape<kWarps>;
  const dim3 grid(tiles(shape.tq, Block::kRows), static_cast<unsigned>(shape.heads), static_cast<unsigned>(shape.batch));
  if (shape.dim == 64) {
    launch_with_shared<staged_shared_bytes<64, 2>()>("flash_forward_kernel", &flash_forward_kernel<64, kWarps>, grid, Block::kThreads, shape, args,
                         stream);
  } else {
    launch_with_shared<staged_shared_bytes<128, 2>()>("flash_forward_kernel", &flash_forward_kernel<128, kWarps>, grid, Block::kThreads, shape,
                          args, stream);
  }
}

template <int kD, int kWarps>
void launch_backward_for_dim(const AttentionShape& shape, const AttentionBackward<bf16>& args, cudaStream_t stream) {
  using Block = BlockShape<kWarps>;
  if (shape.tq > 0) {
    const dim3 grid(tiles(shape.tq, Block::kRows), static_cast<unsigned>(shape.heads), static_cast<unsigned>(shape.batch));
    launch_with_shared<staged_shared_bytes<kD, 2>()>("flash_dq_kernel", &flash_dq_kernel<kD, kWarps>, grid, Block::kThreads, shape, args, stream);
  }
  const dim3 grid(tiles(shape.tk, Block::kRows), static_cast<unsigned>(shape.kv_heads), static_cast<unsigned>(shape.batch));
  constexpr std::size_t kKeyRowBytes = 2 * Block::kRows * Tile<kD>::kStride * sizeof(bf16);  // k and v
  launch_with_shared<staged_shared_bytes<kD, 2>() + kKeyRowBytes>("flash_dkdv_kernel", &flash_dkdv_kernel<kD, kWarps>, grid, Block::kThreads, shape,
                                     args, stream);
}

template <int kWarps>
void launch_backward(const AttentionShape& shape, const AttentionBackward<bf16>& args, cudaStream_t stream) {
  if (shape.dim == 64) return launch_backward_for_dim<64, kWarps>(shape, args, stream);
  launch_backward_for_dim<128, kWarps>(shape, args, stream);
}

}  // namespace

bool flash_attention_forward_supports(const AttentionShape& shape, const AttentionForward<bf16>& args) {
  return (shape.dim == 64 || shape.dim == 128) && rows_aligned(args.out) && rows_aligned(args.q) &&
         rows_aligned(args.k) && rows_aligned(args.v);
}

bool flash_attention_backward_supports(const AttentionShape& shape, const AttentionBackward<bf16>& args) {
  return (shape.dim == 64 || shape.dim == 128) && rows_aligned(args.dq) && rows_aligned(args.dk) && rows_aligned(args.dv) &&
         rows_aligned(args.dout) && rows_aligned(args.q) && rows_aligned(args.k) && rows_aligned(args.v) &&
         rows_aligned(args.out);
}

void set_flash_attention_block_warps(int warps) {
  if (warps != 4 && warps != 8)
    cuda_launch::fail_kernel_argument("flash_attention", "a block is 4 or 8 warps");
  block_warps = warps;
}

int flash_attention_block_warps() { return block_warps; }

bool flash_attention_wgmma_built() {
#if KILN_CUDA_EMULATED || defined(KILN_CUDA_SM90A)
  return true;
#else
  return false;
#endif
}

void set_flash_attention_kernels(FlashKernels kernel) {
  if (kernel == FlashKernels::wgmma && !flash_attention_wgmma_built())
    cuda_launch::fail_kernel_argument("flash_attention",
                                      "the wgmma kernels need kiln built for sm_90a (CMAKE_CUDA_ARCHITECTURES=90a)");
  kernels = kernel;
}

FlashKernels flash_attention_kernels() { return kernels; }

// Shapes and pointers were checked by attention.cu's launchers, which call these.
void flash_attention_forward(const AttentionShape& shape, const AttentionForward<bf16>& args, cudaStream_t stream) {
  if (kernels == FlashKernels::wgmma) return flash_attention_forward_wgmma(shape, args, block_warps, stream);
  if (block_warps == 8) return launch_forward<8>(shape, args, stream);
  launch_forward<4>(shape, args, stream);
}

void flash_attention_backward(const AttentionShape& shape, const AttentionBackward<bf16>& args, cudaStream_t stream) {
  if (kernels == FlashKernels::wgmma) return flash_attention_backward_wgmma(shape, args, block_warps, stream);
  if (block_warps == 8) return launch_backward<8>(shape, args, stream);
  launch_backward<4>(shape, args, stream);
}

}  // namespace kiln::KILN_CUDA_NS
