// Embedding forward (gather) and backward (scatter-add without atomics).
//   ids [rows] i32, table [table_rows, channels], out/dout [rows, channels]   f32 or bf16
//   position_ids [rows] i32, positions [position_rows, channels] (optional, GPT-2)
//   dtable [table_rows, channels] f32
// Forward: blocks stride over rows; the threads of a block walk a row in 16-byte packs (scalar
// when channels is not a multiple of the pack width or a pointer is unaligned).
// Backward, deterministic by ownership: block (x, y) owns the columns of chunk x for the
// table rows of range y; the block finds the tokens whose ids fall in its range (all threads
// test one id each, ballots keep token order), then every thread, owning one pack (or one
// column) of those columns, adds their dout rows into its own table elements in token order. No element has two writers and each sums in
// token order, so the result equals the CPU op's bitwise and does not depend on the grid.
// Cost: every block reads all `rows` ids (4 bytes each, from L2 after the first block), so
// the id traffic is rows x blocks x 4 bytes, e.g. 8192 tokens x ~1000 blocks = 31 MiB of L2
// reads for GPT-2, against the 12 MiB (bf16) to 25 MiB (f32) of dout it must read anyway;
// dout and dtable traffic is the minimum (each dout element read once, by its owner). (Each
// thread testing every id itself made the id scan 128 times the work: 1.2 ms of a GPT-2 small
// step on an H200, for the token and position tables.)
// A skewed batch (one id on 10% of the tokens) serialises that id's adds in one block: each
// add is a dependent read-modify-write of the same table words, which bounds the kernel by
// the most frequent id's count, not by the batch size over the SMs.
// A device-side sort by id would cut the id scans but needs a scan-and-scatter pass of its
// own; for vocabularies ~50k and ~10k tokens per step the scan is cheaper and simpler.
#include "kernels/cuda/embedding.hpp"

#include <algorithm>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kForwardThreads = 256;
constexpr std::int64_t kMaxForwardBlocks = 132 * 8;
constexpr int kBackwardThreads = 128;
constexpr int kIdTile = 1024;
constexpr std::int64_t kBackwardBlockTarget = 1024;  // column chunks x row ranges, about

// The table row of `id` in a shard of `table_rows` rows from `first_id`, or -1 if not held.
__device__ __forceinline__ std::int64_t held_row(std::int32_t id, std::int64_t first_id, std::int64_t table_rows) {
  const std::int64_t row = static_cast<std::int64_t>(id) - first_id;
  return row >= 0 && row < table_rows ? row : -1;
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kForwardThreads)
    embedding_forward_kernel(T* out, const std::int32_t* ids, const T* table, std::int64_t table_rows,
                             std::int64_t first_id, std::int64_t rows, int channels, PositionEmbedding<T> positions) {
  constexpr int width = kPacked ? Pack<T>::kWidth : 1;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const std::int64_t row = held_row(ids[r], first_id, table_rows);
    const T* token = row >= 0 ? table + row * channels : nullptr;
    const T* position = positions.table ? positions.table + static_cast<std::int64_t>(positions.position_ids[r]) * channels
                                        : nullptr;
    T* target = out + r * channels;
    for (int c = static_cast<int>(threadIdx.x) * width; c < channels; c += kForwardThreads * width) {
      float sum[width], add[width];
      for (int i = 0; i < width; ++i) sum[i] = 0.0f;
      if constexpr (kPacked) {
        if (token) Pack<T>::load(token + c, sum);
        if (position) {
          Pack<T>::load(position + c, add);
          for (int i = 0; i < width; ++i) sum[i] += add[i];
        }
        Pack<T>::store(target + c, sum);
      } else {
        if (token) sum[0] = to_fp32(token[c]);
        if (position) sum[0] += to_fp32(position[c]);
        target[c] = from_fp32<T>(sum[0]);
      }
    }
  }
}

// dtable[row, c .. c + width) += dout[r, c .. c + width) for one owner thread.
template <class T, int kWidth>
__device__ __forceinline__ void add_row_pack(float* dtable_row, const T* dout_row, int c) {
  if constexpr (kWidth == 1) {
    dtable_row[c] += to_fp32(dout_row[c]);
  } else {
    float add[kWidth];
    Pack<T>::load(dout_row + c, add);
    for (int i = 0; i < kWidth; i += 4) {  // the f32 table side: 16-byte packs of 4
      float sum[4];
      Pack<float>::load(dtable_row + c + i, sum);
      for (int j = 0; j < 4; ++j) sum[j] += add[i + j];
      Pack<float>::store(dtable_row + c + i, sum);
    }
  }
}

// Of ids tile[0 .. count), those whose table row lies in [begin, end), in token order: their
// offsets into matches and their rows into match_rows; returns how many (block-collective,
// every thread gets the same count). One id per thread per step: ballots order the matches of a
// warp, per-warp counts in shared memory those of the block.
__device__ int collect_matches(const std::int32_t* ids, int count, std::int64_t first_id, std::int64_t table_rows,
                               std::int64_t begin, std::int64_t end, int* matches, std::int64_t* match_rows,
                               int* warp_counts) {
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  int found = 0;
  for (int chunk = 0; chunk < count; chunk += kBackwardThreads) {
    const int k = chunk + static_cast<int>(threadIdx.x);
    const std::int64_t row = k < count ? held_row(ids[k], first_id, table_rows) : -1;
    const bool mine = row >= begin && row < end;
    const unsigned ballot = __ballot_sync(0xffffffffu, mine);
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();
    int before = found, total = 0;
    for (int w = 0; w < kBackwardThreads / 32; ++w) {
      if (w < warp) before += warp_counts[w];
      total += warp_counts[w];
    }
    if (mine) {
      const int at = before + __popc(ballot & ((1u << lane) - 1u));
      matches[at] = k, match_rows[at] = row;
    }
    found += total;
    __syncthreads();  // warp_counts is rewritten by the next chunk
  }
  return found;
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kBackwardThreads)
    embedding_backward_kernel(float* dtable, std::int64_t table_rows, const T* dout, const std::int32_t* ids,
                              std::int64_t first_id, std::int64_t rows, int channels, std::int64_t rows_per_range) {
  constexpr int width = kPacked ? Pack<T>::kWidth : 1;
  __shared__ int matches[kIdTile];
  __shared__ std::int64_t match_rows[kIdTile];
  __shared__ int warp_counts[kBackwardThreads / 32];
  const int c = (static_cast<int>(blockIdx.x) * kBackwardThreads + static_cast<int>(threadIdx.x)) * width;
  const std::int64_t range_begin = static_cast<std::int64_t>(blockIdx.y) * rows_per_range;
  const std::int64_t range_end = range_begin + rows_per_range < table_rows ? range_begin + rows_per_range : table_rows;
  for (std::int64_t tile_begin = 0; tile_begin < rows; tile_begin += kIdTile) {
    const int count = static_cast<int>(rows - tile_begin < kIdTile ? rows - tile_begin : kIdTile);
    const int found = collect_matches(ids + tile_begin, count, first_id, table_rows, range_begin, range_end, matches,
                                      match_rows, warp_counts);
    if (c < channels) {
      for (int m = 0; m < found; ++m)  // token order: the sum order of the CPU op
        add_row_pack<T, width>(dtable + match_rows[m] * channels, dout + (tile_begin + matches[m]) * channels, c);
    }
    __syncthreads();  // the next tile overwrites the matches slower threads may still read
  }
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

void check_shapes(const char* kernel, std::int64_t table_rows, std::int64_t rows, std::int64_t channels) {
  if (table_rows <= 0 || rows < 0 || channels <= 0 || channels > (std::int64_t{1} << 30))
    cuda_launch::fail_kernel_argument(kernel, "table_rows must be > 0, rows >= 0 and channels in 1..2^30");
}

template <class T>
void launch_embedding_forward(T* out, const std::int32_t* ids, const T* table, std::int64_t table_rows,
                              std::int64_t first_id, std::int64_t rows, std::int64_t channels,
                              PositionEmbedding<T> positions, cudaStream_t stream) {
  constexpr const char* kernel = "embedding_forward_kernel";
  check_shapes(kernel, table_rows, rows, channels);
  if ((positions.table == nullptr) != (positions.position_ids == nullptr) ||
      (positions.table && positions.position_rows <= 0))
    cuda_launch::fail_kernel_argument(kernel, "positions need both position_ids and a table of > 0 rows, or neither");
  if (rows == 0) return;
  if (!out || !ids || !table) cuda_launch::fail_kernel_argument(kernel, "out, ids and table must not be null");
  const bool packed = channels % Pack<T>::kWidth == 0 && aligned_16(out) && aligned_16(table) &&
                      (positions.table == nullptr || aligned_16(positions.table));
  const auto blocks = static_cast<unsigned>(std::min(kMaxForwardBlocks, rows));
  auto* const launch = packed ? &embedding_forward_kernel<T, true> : &embedding_forward_kernel<T, false>;
  KILN_LAUNCH_NAMED(kernel, launch, dim3(blocks), dim3(kForwardThreads), 0, stream, out, ids, table, table_rows,
                    first_id, rows, static_cast<int>(channels), positions);
}

template <class T>
void launch_embedding_backward(float* dtable, std::int64_t table_rows, const T* dout, const std::int32_t* ids,
                               std::int64_t first_id, std::int64_t rows, std::int64_t channels, cudaStream_t stream) {
  constexpr const char* kernel = "embedding_backward_kernel";
  check_shapes(kernel, table_rows, rows, channels);
  if (rows == 0) return;
  if (!dtable || !dout || !ids) cuda_launch::fail_kernel_argument(kernel, "dtable, dout and ids must not be null");
  const bool packed = channels % Pack<T>::kWidth == 0 && aligned_16(dtable) && aligned_16(dout);
  const std::int64_t width = packed ? Pack<T>::kWidth : 1;
  const std::int64_t column_chunks = ceil_div(channels, kBackwardThreads * width);
  const std::int64_t ranges = std::clamp<std::int64_t>(kBackwardBlockTarget / column_chunks, 1, std::min<std::int64_t>(table_rows, 65535));
  const std::int64_t rows_per_range = ceil_div(table_rows, ranges);
  const dim3 grid(static_cast<unsigned>(column_chunks), static_cast<unsigned>(ceil_div(table_rows, rows_per_range)));
  auto* const launch = packed ? &embedding_backward_kernel<T, true> : &embedding_backward_kernel<T, false>;
  KILN_LAUNCH_NAMED(kernel, launch, grid, dim3(kBackwardThreads), 0, stream, dtable, table_rows, dout, ids, first_id,
                    rows, static_cast<int>(channels), rows_per_range);
}

}  // namespace

void embedding_forward(float* out, const std::int32_t* ids, const float* table, std::int64_t table_rows,
                       std::int64_t first_id, std::int64_t rows, std::int64_t channels,
                       PositionEmbedding<float> positions, cudaStream_t stream) {
  launch_embedding_forward(out, ids, table, table_rows, first_id, rows, channels, positions, stream);
}
void embedding_forward(__nv_bfloat16* out, const std::int32_t* ids, const __nv_bfloat16* table,
                       std::int64_t table_rows, std::int64_t first_id, std::int64_t rows, std::int64_t channels,
                       PositionEmbedding<__nv_bfloat16> positions, cudaStream_t stream) {
  launch_embedding_forward(out, ids, table, table_rows, first_id, rows, channels, positions, stream);
}

void embedding_backward(float* dtable, std::int64_t table_rows, const float* dout, const std::int32_t* ids,
                        std::int64_t first_id, std::int64_t rows, std::int64_t channels, cudaStream_t stream) {
  launch_embedding_backward(dtable, table_rows, dout, ids, first_id, rows, channels, stream);
}
void embedding_backward(float* dtable, std::int64_t table_rows, const __nv_bfloat16* dout, const std::int32_t* ids,
                        std::int64_t first_id, std::int64_t rows, std::int64_t channels, cudaStream_t stream) {
  launch_embedding_backward(dtable, table_rows, dout, ids, first_id, rows, channels, stream);
}

}  // namespace kiln::KILN_CUDA_NS
