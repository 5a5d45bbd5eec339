#pragma once
// The weight (and bias) gradients of LayerNorm and RMSNorm, reduced over rows in a fixed
// order, without atomics, so a run repeats bit for bit whatever the scheduling:
//   dw[c] += sum_r dy[r, c] * (x[r, c] - mean[r]) * rstd[r]     (mean = 0 for RMSNorm)
//   db[c] += sum_r dy[r, c]                                      (LayerNorm only)
// Pass 1 (partials_kernel): grid (column groups, row chunks). A thread owns one group of
// columns (a 16-byte pack when aligned, else one column), walks its chunk's rows in order and
// writes the chunk's fp32 sums to the workspace [chunks, channels] (one slab for dw, one for
// db). Consecutive threads read consecutive 16-byte packs of a row: coalesced, no shared
// memory. Pass 2 (finish_kernel): a warp per column adds the chunks' sums in a fixed order.
// The chunking depends on the row count alone (not on the GPU), so the sums are the same on
// every device.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/element_group.cuh"
#include "kernels/cuda/vector_access.cuh"

// Internal linkage (an unnamed namespace in a header, on purpose): each norm .cu gets its own
// copy of these kernels, so the emulated build, where __global__ is an ordinary function, does
// not see two definitions of finish_kernel.
namespace kiln::KILN_CUDA_NS {
namespace {
namespace norm_weight_grads {

constexpr int kColumnThreads = 128;
constexpr std::int64_t kMinRowsPerChunk = 32;  // enough work per thread to hide the row loads
constexpr std::int64_t kMaxChunks = 65535;     // grid y limit

struct ChunkPlan {
  std::int64_t rows_per_chunk, chunks;
};
inline ChunkPlan chunk_plan(std::int64_t rows) {
  std::int64_t per_chunk = (rows + kMaxChunks - 1) / kMaxChunks;
  if (per_chunk < kMinRowsPerChunk) per_chunk = kMinRowsPerChunk;
  return {per_chunk, rows == 0 ? 0 : (rows + per_chunk - 1) / per_chunk};
}

// Workspace for `gradients` (1: dw; 2: dw and db) slabs of per-chunk sums, in bytes.
inline std::int64_t workspace_bytes(std::int64_t rows, std::int64_t channels, int gradients) {
  return chunk_plan(rows).chunks * channels * gradients * static_cast<std::int64_t>(sizeof(float));
}

template <int kWidth, bool kPacked>
__device__ __forceinline__ void store_sums(float* address, const float* sums) {
  if constexpr (kPacked) {
    for (int i = 0; i < kWidth; i += Pack<float>::kWidth) Pack<float>::store(address + i, sums + i);
  } else {
    for (int i = 0; i < kWidth; ++i) address[i] = sums[i];
  }
}

// kCentred: LayerNorm (subtract mean[r], also sum db); otherwise RMSNorm (dw only).
template <class T, bool kPacked, bool kCentred>
__global__ void __launch_bounds__(kColumnThreads)
    partials_kernel(float* dw_partial, float* db_partial, const T* dy, const T* x, const float* mean,
                    const float* rstd, std::int64_t rows, int channels, std::int64_t rows_per_chunk) {
  using Group = ElementGroup<T, kPacked>;
  constexpr int width = Group::kWidth;
  const int column = (blockIdx.x * kColumnThreads + threadIdx.x) * width;
  if (column >= channels) return;  // no barrier or collective follows
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.y) * rows_per_chunk;
  const std::int64_t last = first + rows_per_chunk < rows ? first + rows_per_chunk : rows;
  float dw_sum[width] = {}, db_sum[width] = {};
  for (std::int64_t row = first; row < last; ++row) {
    float gradient[width], input[width];
    Group::load(dy + row * channels + column, gradient);
    Group::load(x + row * channels + column, input);
    const float centre = kCentred ? mean[row] : 0.0f, scale = rstd[row];
    for (int i = 0; i < width; ++i) {
      dw_sum[i] += gradient[i] * ((input[i] - centre) * scale);
      if (kCentred) db_sum[i] += gradient[i];
    }
  }
  const std::int64_t slot = static_cast<std::int64_t>(blockIdx.y) * channels + column;
  store_sums<width, kPacked>(dw_partial + slot, dw_sum);
  if (kCentred) store_sums<width, kPacked>(db_partial + slot, db_sum);
}

// blockIdx.y 0: dw from the dw slab; 1: db from the db slab. A null target is skipped. A warp
// per column: lane l adds chunks l, l + 32, ... in order, then the warp's butterfly adds the 32
// lane sums, a fixed order for a given chunk count. (A thread per column adding all chunks in
// turn was a chain of ~256 dependent loads: 31 us per norm on an H200, 0.8 ms of a GPT-2
// small step.)
constexpr int kFinishWarps = kColumnThreads / 32;
__global__ void __launch_bounds__(kColumnThreads)
    finish_kernel(float* dw, float* db, const float* dw_partial, const float* db_partial, std::int64_t chunks,
                  int channels) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int column = static_cast<int>(blockIdx.x) * kFinishWarps + static_cast<int>(threadIdx.x / 32);
  float* const target = blockIdx.y == 0 ? dw : db;
  const float* const partial = blockIdx.y == 0 ? dw_partial : db_partial;
  if (column >= channels || !target) return;  // whole warps: the shuffles below see all 32 lanes
  float sum = 0.0f;
  for (std::int64_t chunk = lane; chunk < chunks; chunk += 32) sum += partial[chunk * channels + column];
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (lane == 0) target[column] += sum;
}

// Host side: both passes. dw_partial/db_partial are the workspace's slabs (db_partial unused
// unless kCentred). The caller checked the shapes and the workspace size.
template <class T, bool kCentred>
void launch(float* dw, float* db, float* dw_partial, float* db_partial, const T* dy, const T* x, const float* mean,
            const float* rstd, std::int64_t rows, int channels, cudaStream_t stream) {
  const ChunkPlan plan = chunk_plan(rows);
  const bool packed = channels % Pack<T>::kWidth == 0 && aligned_16(dy) && aligned_16(x) && aligned_16(dw_partial) &&
                      (!kCentred || aligned_16(db_partial));
  const int width = packed ? Pack<T>::kWidth : 1;
  const unsigned column_blocks = static_cast<unsigned>((channels / width + kColumnThreads - 1) / kColumnThreads);
  auto* const partials = packed ? &partials_kernel<T, true, kCentred> : &partials_kernel<T, false, kCentred>;
  KILN_LAUNCH_NAMED("norm_weight_grads::partials_kernel", partials, dim3(column_blocks, static_cast<unsigned>(plan.chunks)),
                    dim3(kColumnThreads), 0, stream, dw_partial, db_partial, dy, x, mean, rstd, rows, channels,
                    plan.rows_per_chunk);
  const unsigned finish_blocks = static_cast<unsigned>((channels + kFinishWarps - 1) / kFinishWarps);
  KILN_LAUNCH(finish_kernel, dim3(finish_blocks, kCentred ? 2u : 1u), dim3(kColumnThreads), 0, stream, dw, db,
              dw_partial, db_partial, plan.chunks, channels);
}

}  // namespace norm_weight_grads
}  // namespace
}  // namespace kiln::KILN_CUDA_NS
