// Tiled attention, forward and backward (see attention.hpp for the tensors and semantics).
//
// Key tiles of 32 rows are staged in shared memory as f32, so a warp's 32 lanes each score one
// key of the tile. K rows use an odd row stride: lane j reading element d of row j touches bank
// (j * stride + d) mod 32, distinct across the warp. Everything else in shared memory is read
// by broadcast (all lanes one address) or along a row (consecutive lanes, consecutive words).
//
//   forward   grid (Tq / 16, Hq, B), 4 warps. A warp owns 4 queries: its lanes hold the output
//             dims lane, lane + 32, ... of each, an online softmax (max, sum) per query, and walk
//             the key tiles in range: score (lane = key), rescale, accumulate p v.
//   dq        grid (Tq / 8, Hq, B), 4 warps of 2 queries, the same walk: dp (lane = key) from
//             dout . v, ds = p (dp - delta), dq += ds k. delta = dout . out per query.
//   dk, dv    grid (Tk / 32, Hkv, B): a block owns one key tile and walks every (query head of
//             the group, query) that sees it, four at a time (one per warp); then all 128
//             threads add the four outer products into dk, dv held in registers.
//
// Which keys a query sees is a contiguous range (attention_visibility.cuh). bf16 with head dims
// of 64 and 128 takes the tensor-core kernels of flash_attention.cu instead.
#include "kernels/cuda/attention.hpp"

#include "kernels/cuda/attention_visibility.cuh"
#include "kernels/cuda/flash_attention.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/kernel_launch.hpp"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

using namespace attention_detail;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kKeyTile = 32;
constexpr int kForwardQueriesPerWarp = 4;
constexpr int kGradQueriesPerWarp = 2;
constexpr float kNegativeInfinity = -INFINITY;

__host__ __device__ constexpr int odd_stride(int dim) { return dim % 2 == 0 ? dim + 1 : dim; }
__host__ __device__ constexpr int padded_dim(int dims_per_lane) { return 32 * dims_per_lane; }

// ---- staging into shared memory ---------------------------------------------------------------

// dst [kKeyTile][stride] f32 <- rows t0 .. t0 + n - 1 of head h; zeros past n rows and dim
// columns (whole block).
template <class T>
__device__ void stage_key_rows(float* dst, int stride, const HeadTensor<const T>& x, std::int64_t b,
                               std::int64_t t0, std::int64_t n, std::int64_t h, int dim) {
  for (int e = static_cast<int>(threadIdx.x); e < kKeyTile * stride; e += kThreads) {
    const int r = e / stride, d = e % stride;
    dst[e] = r < n && d < dim ? to_fp32(x.row(b, t0 + r, h)[d]) : 0.0f;
  }
}

// dst [padded] f32 <- one row (null: zeros); zeros past dim (one warp).
template <class T>
__device__ void stage_row(float* dst, const T* row, int dim, int padded) {
  for (int d = lane_id(); d < padded; d += 32) dst[d] = row != nullptr && d < dim ? to_fp32(row[d]) : 0.0f;
}

// a . b over dim elements, in index order (a is read by broadcast, b along one lane's row).
__device__ __forceinline__ float dot(const float* a, const float* b, int dim) {
  float sum = 0.0f;
  for (int d = 0; d < dim; ++d) sum += a[d] * b[d];
  return sum;
}

// sum over the warp of row_a . row_b (global rows, dims split across lanes).
template <class T>
__device__ float warp_dot(const T* row_a, const T* row_b, int dim) {
  float sum = 0.0f;
  for (int d = lane_id(); d < dim; d += 32) sum += to_fp32(row_a[d]) * to_fp32(row_b[d]);
  return warp_sum(sum);
}

// ---- forward --------------------------------------------------------------------------------

template <class T, int kDimsPerLane>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(AttentionShape shape, AttentionForward<T> args) {
  constexpr int kQueries = kWarps * kForwardQueriesPerWarp;
  constexpr int kPadded = padded_dim(kDimsPerLane);
  const int dim = static_cast<int>(shape.dim), key_stride = odd_stride(dim);
  KILN_DYNAMIC_SHARED(float, shared);
  float* const q_tile = shared;                            // [kQueries][kPadded]
  float* const k_tile = q_tile + kQueries * kPadded;       // [kKeyTile][key_stride]
  float* const v_tile = k_tile + kKeyTile * key_stride;    // [kKeyTile][kPadded]
  float* const probs = v_tile + kKeyTile * kPadded + warp_id() * kKeyTile;  // this warp's [kKeyTile]
  __shared__ std::int64_t range_lo[kQueries], range_hi[kQueries];

  const std::int64_t b = blockIdx.z, h = blockIdx.y, i0 = std::int64_t{blockIdx.x} * kQueries;
  const std::int64_t kv_head = h / (shape.heads / shape.kv_heads), offset = shape.tk - shape.tq;
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  const int lane = lane_id();

  KeyRange mine[kForwardQueriesPerWarp];
  KILN_UNROLL
  for (int r = 0; r < kForwardQueriesPerWarp; ++r) {
    const int slot = warp_id() * kForwardQueriesPerWarp + r;
    const std::int64_t i = i0 + slot;
    stage_row(q_tile + slot * kPadded, i < shape.tq ? args.q.row(b, i, h) : nullptr, dim, kPadded);
    if (i < shape.tq) mine[r] = visible_keys(doc, offset + i, shape.tk, shape.causal);
    if (lane == 0) range_lo[slot] = mine[r].lo, range_hi[slot] = mine[r].hi;
  }
  __syncthreads();
  const KeyRange block_keys = union_of(range_lo, range_hi, kQueries);

  float row_max[kForwardQueriesPerWarp], row_sum[kForwardQueriesPerWarp];
  float acc[kForwardQueriesPerWarp][kDimsPerLane];
  KILN_UNROLL
  for (int r = 0; r < kForwardQueriesPerWarp; ++r) {
    row_max[r] = kNegativeInfinity, row_sum[r] = 0.0f;
    KILN_UNROLL
    for (int c = 0; c < kDimsPerLane; ++c) acc[r][c] = 0.0f;
  }
  for (std::int64_t k0 = block_keys.lo; k0 < block_keys.hi; k0 += kKeyTile) {
    const std::int64_t n = smaller(kKeyTile, shape.tk - k0);
    stage_key_rows(k_tile, key_stride, args.k, b, k0, n, kv_head, dim);
    stage_key_rows(v_tile, kPadded, args.v, b, k0, n, kv_head, dim);
    __syncthreads();
    const std::int64_t key = k0 + lane;
    KILN_UNROLL
    for (int r = 0; r < kForwardQueriesPerWarp; ++r) {
      const int slot = warp_id() * kForwardQueriesPerWarp + r;
      const bool visible = key >= mine[r].lo && key < mine[r].hi;
      const float score = visible ? dot(q_tile + slot * kPadded, k_tile + lane * key_stride, dim) * shape.scale
                                  : kNegativeInfinity;
      const float new_max = fmaxf(row_max[r], warp_max(score));
      if (new_max == kNegativeInfinity) continue;  // warp-uniform: no visible key so far
      const float correction = expf(row_max[r] - new_max);  // 0 on the first visible tile
      const float p = visible ? expf(score - new_max) : 0.0f;
      row_sum[r] = row_sum[r] * correction + warp_sum(p);
      row_max[r] = new_max;
      probs[lane] = p;
      __syncwarp();
      KILN_UNROLL
      for (int c = 0; c < kDimsPerLane; ++c) acc[r][c] *= correction;
      for (int j = 0; j < n; ++j) {
        const float pj = probs[j];
        KILN_UNROLL
        for (int c = 0; c < kDimsPerLane; ++c) acc[r][c] += pj * v_tile[j * kPadded + lane + 32 * c];
      }
      __syncwarp();  // probs is rewritten by the next query
    }
    __syncthreads();  // the next tile overwrites k_tile and v_tile
  }

  KILN_UNROLL
  for (int r = 0; r < kForwardQueriesPerWarp; ++r) {
    const std::int64_t i = i0 + warp_id() * kForwardQueriesPerWarp + r;
    if (i >= shape.tq) break;
    // A query with no visible key outputs zeros; lse = +inf zeroes its backward probabilities.
    const float inv_sum = row_sum[r] > 0.0f ? 1.0f / row_sum[r] : 0.0f;
    T* out = args.out.row(b, i, h);
    KILN_UNROLL
    for (int c = 0; c < kDimsPerLane; ++c)
      if (lane + 32 * c < dim) out[lane + 32 * c] = from_fp32<T>(acc[r][c] * inv_sum);
    if (lane == 0)
      args.lse[(b * shape.heads + h) * shape.tq + i] = row_sum[r] > 0.0f ? row_max[r] + logf(row_sum[r]) : INFINITY;
  }
}

// ---- backward: dq ---------------------------------------------------------------------------

template <class T, int kDimsPerLane>
__global__ void __launch_bounds__(kThreads)
    attention_dq_kernel(AttentionShape shape, AttentionBackward<T> args) {
  constexpr int kQueries = kWarps * kGradQueriesPerWarp;
  constexpr int kPadded = padded_dim(kDimsPerLane);
  const int dim = static_cast<int>(shape.dim), key_stride = odd_stride(dim);
  KILN_DYNAMIC_SHARED(float, shared);
  float* const q_tile = shared;                            // [kQueries][kPadded]
  float* const dout_tile = q_tile + kQueries * kPadded;    // [kQueries][kPadded]
  float* const k_tile = dout_tile + kQueries * kPadded;    // [kKeyTile][key_stride]
  float* const v_tile = k_tile + kKeyTile * key_stride;    // [kKeyTile][key_stride]
  float* const dscores = v_tile + kKeyTile * key_stride + warp_id() * kKeyTile;  // this warp's [kKeyTile]
  __shared__ std::int64_t range_lo[kQueries], range_hi[kQueries];

  const std::int64_t b = blockIdx.z, h = blockIdx.y, i0 = std::int64_t{blockIdx.x} * kQueries;
  const std::int64_t kv_head = h / (shape.heads / shape.kv_heads), offset = shape.tk - shape.tq;
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  const int lane = lane_id();

  KeyRange mine[kGradQueriesPerWarp];
  float lse[kGradQueriesPerWarp], delta[kGradQueriesPerWarp];
  KILN_UNROLL
  for (int r = 0; r < kGradQueriesPerWarp; ++r) {
    const int slot = warp_id() * kGradQueriesPerWarp + r;
    const std::int64_t i = i0 + slot;
    const bool real = i < shape.tq;
    stage_row(q_tile + slot * kPadded, real ? args.q.row(b, i, h) : nullptr, dim, kPadded);
    stage_row(dout_tile + slot * kPadded, real ? args.dout.row(b, i, h) : nullptr, dim, kPadded);
    lse[r] = real ? args.lse[(b * shape.heads + h) * shape.tq + i] : INFINITY;
    delta[r] = real ? warp_dot(args.dout.row(b, i, h), args.out.row(b, i, h), dim) : 0.0f;
    if (real) mine[r] = visible_keys(doc, offset + i, shape.tk, shape.causal);
    if (lane == 0) range_lo[slot] = mine[r].lo, range_hi[slot] = mine[r].hi;
  }
  __syncthreads();
  const KeyRange block_keys = union_of(range_lo, range_hi, kQueries);

  float acc[kGradQueriesPerWarp][kDimsPerLane] = {};
  for (std::int64_t k0 = block_keys.lo; k0 < block_keys.hi; k0 += kKeyTile) {
    const std::int64_t n = smaller(kKeyTile, shape.tk - k0);
    stage_key_rows(k_tile, key_stride, args.k, b, k0, n, kv_head, dim);
    stage_key_rows(v_tile, key_stride, args.v, b, k0, n, kv_head, dim);
    __syncthreads();
    const std::int64_t key = k0 + lane;
    KILN_UNROLL
    for (int r = 0; r < kGradQueriesPerWarp; ++r) {
      const int slot = warp_id() * kGradQueriesPerWarp + r;
      float ds = 0.0f;
      if (key >= mine[r].lo && key < mine[r].hi) {
        const float p = expf(dot(q_tile + slot * kPadded, k_tile + lane * key_stride, dim) * shape.scale - lse[r]);
        const float dp = dot(dout_tile + slot * kPadded, v_tile + lane * key_stride, dim);
        ds = p * (dp - delta[r]);
      }
      dscores[lane] = ds;
      __syncwarp();
      for (int j = 0; j < n; ++j) {
        const float dsj = dscores[j];
        KILN_UNROLL
        for (int c = 0; c < kDimsPerLane; ++c) acc[r][c] += dsj * k_tile[j * key_stride + lane + 32 * c];
      }
      __syncwarp();
    }
    __syncthreads();
  }

  KILN_UNROLL
  for (int r = 0; r < kGradQueriesPerWarp; ++r) {
    const std::int64_t i = i0 + warp_id() * kGradQueriesPerWarp + r;
    if (i >= shape.tq) break;
    T* dq = args.dq.row(b, i, h);
    KILN_UNROLL
    for (int c = 0; c < kDimsPerLane; ++c)
      if (lane + 32 * c < dim) dq[lane + 32 * c] = from_fp32<T>(acc[r][c] * shape.scale);
  }
}

// ---- backward: dk, dv -----------------------------------------------------------------------

template <class T, int kDimsPerLane>
__global__ void __launch_bounds__(kThreads)
    attention_dkdv_kernel(AttentionShape shape, AttentionBackward<T> args) {
  constexpr int kPadded = padded_dim(kDimsPerLane);
  constexpr int kOwned = kKeyTile * kPadded / kThreads;  // dk and dv elements per thread
  const int dim = static_cast<int>(shape.dim), key_stride = odd_stride(dim);
  KILN_DYNAMIC_SHARED(float, shared);
  float* const k_tile = shared;                          // [kKeyTile][key_stride]
  float* const v_tile = k_tile + kKeyTile * key_stride;  // [kKeyTile][key_stride]
  float* const q_rows = v_tile + kKeyTile * key_stride;  // [kWarps][kPadded]
  float* const dout_rows = q_rows + kWarps * kPadded;    // [kWarps][kPadded]
  float* const probs = dout_rows + kWarps * kPadded;     // [kWarps][kKeyTile]
  float* const dscores = probs + kWarps * kKeyTile;      // [kWarps][kKeyTile]

  const std::int64_t b = blockIdx.z, kv_head = blockIdx.y, k0 = std::int64_t{blockIdx.x} * kKeyTile;
  const std::int64_t n = smaller(kKeyTile, shape.tk - k0), group = shape.heads / shape.kv_heads;
  const std::int64_t offset = shape.tk - shape.tq;
  const std::int32_t* doc = args.doc_ids != nullptr ? args.doc_ids + b * shape.tk : nullptr;
  const int lane = lane_id(), warp = warp_id();
  stage_key_rows(k_tile, key_stride, args.k, b, k0, n, kv_head, dim);
  stage_key_rows(v_tile, key_stride, args.v, b, k0, n, kv_head, dim);

  const std::int64_t key = k0 + lane;
  const KeyRange run = key_run(doc, k0, n, shape.tk);  // of this lane's key
  // The query positions that see some key of the tile: [first start (or k0), last end).
  const std::int64_t first_position =
      shape.causal ? k0 : __shfl_sync(kFullWarp, run.lo, 0);
  const std::int64_t last_position = __shfl_sync(kFullWarp, run.hi, static_cast<int>(n - 1));
  const std::int64_t first_query = larger(0, first_position - offset);
  const std::int64_t queries = larger(0, smaller(shape.tq, last_position - offset) - first_query);

  float dk[kOwned] = {}, dv[kOwned] = {};
  __syncthreads();
  for (std::int64_t step = 0; step < group * queries; step += kWarps) {
    const std::int64_t item = step + warp;
    const bool real = item < group * queries;
    const std::int64_t h = kv_head * group + (real ? item / queries : 0);
    const std::int64_t i = first_query + (real ? item % queries : 0), position = offset + i;
    float* const q_row = q_rows + warp * kPadded;
    float* const dout_row = dout_rows + warp * kPadded;
    stage_row(q_row, real ? args.q.row(b, i, h) : nullptr, dim, kPadded);
    stage_row(dout_row, real ? args.dout.row(b, i, h) : nullptr, dim, kPadded);
    const float delta = real ? warp_dot(args.dout.row(b, i, h), args.out.row(b, i, h), dim) : 0.0f;
    __syncwarp();
    float p = 0.0f, ds = 0.0f;
    const bool visible = real && lane < n && run.lo <= position && position < run.hi && (!shape.causal || key <= position);
    if (visible) {
      const float lse = args.lse[(b * shape.heads + h) * shape.tq + i];
      p = expf(dot(q_row, k_tile + lane * key_stride, dim) * shape.scale - lse);
      ds = p * (dot(dout_row, v_tile + lane * key_stride, dim) - delta);
    }
    probs[warp * kKeyTile + lane] = p;
    dscores[warp * kKeyTile + lane] = ds;
    __syncthreads();
    KILN_UNROLL
    for (int c = 0; c < kOwned; ++c) {
      const int e = static_cast<int>(threadIdx.x) + kThreads * c, j = e / kPadded, d = e % kPadded;
      KILN_UNROLL
      for (int w = 0; w < kWarps; ++w) {
        dv[c] += probs[w * kKeyTile + j] * dout_rows[w * kPadded + d];
        dk[c] += dscores[w * kKeyTile + j] * q_rows[w * kPadded + d];
      }
    }
    __syncthreads();  // the next step restages the rows
  }

  KILN_UNROLL
  for (int c = 0; c < kOwned; ++c) {
    const int e = static_cast<int>(threadIdx.x) + kThreads * c, j = e / kPadded, d = e % kPadded;
    if (j >= n || d >= dim) continue;
    args.dk.row(b, k0 + j, kv_head)[d] = from_fp32<T>(dk[c] * shape.scale);
    args.dv.row(b, k0 + j, kv_head)[d] = from_fp32<T>(dv[c]);
  }
}

// ---- launches -------------------------------------------------------------------------------

void check_shape(const char* kernel, const AttentionShape& s) {
  if (s.batch < 0 || s.tq < 0 || s.tk < s.tq)
    cuda_launch::fail_kernel_argument(kernel, "batch >= 0 and 0 <= Tq <= Tk are required");
  if (s.dim < 1 || s.dim > kAttentionMaxHeadDim)
    cuda_launch::fail_kernel_argument(kernel, "the head dim must be in [1, 128] (larger heads have no CUDA kernel yet)");
  if (s.heads < 1 || s.kv_heads < 1 || s.heads % s.kv_heads != 0 || s.heads > 65535 || s.batch > 65535)
    cuda_launch::fail_kernel_argument(kernel, "heads must be a positive multiple of kv_heads, both at most 65535, as the batch");
  if (!(s.scale > 0.0f) || !std::isfinite(s.scale))
    cuda_launch::fail_kernel_argument(kernel, "the softmax scale must be positive and finite");
}

// kDimsPerLane = ceil(D / 32), 1 .. 4, as a template argument so the accumulators stay in
// registers.
template <template <class, int> class Kernel, class T, class Fn>
void with_dims_per_lane(std::int64_t dim, Fn&& launch) {
  switch ((dim + 31) / 32) {
    case 1: return launch(Kernel<T, 1>{});
    case 2: return launch(Kernel<T, 2>{});
    case 3: return launch(Kernel<T, 3>{});
    default: return launch(Kernel<T, 4>{});
  }
}

template <class T, int kDimsPerLane>
struct ForwardKernel {
  static constexpr int kDims = kDimsPerLane;
  static constexpr auto kernel = &attention_forward_kernel<T, kDimsPerLane>;
};
template <class T, int kDimsPerLane>
struct DqKernel {
  static constexpr int kDims = kDimsPerLane;
  static constexpr auto kernel = &attention_dq_kernel<T, kDimsPerLane>;
};
template <class T, int kDimsPerLane>
struct DkDvKernel {
  static constexpr int kDims = kDimsPerLane;
  static constexpr auto kernel = &attention_dkdv_kernel<T, kDimsPerLane>;
};

unsigned tiles(std::int64_t count, std::int64_t tile) { return static_cast<unsigned>((count + tile - 1) / tile); }

template <class T>
void launch_forward(const AttentionShape& shape, const AttentionForward<T>& args, cudaStream_t stream) {
  constexpr const char* name = "attention_forward_kernel";
  check_shape(name, shape);
  if (shape.batch == 0 || shape.tq == 0) return;
  if (args.out.data == nullptr || args.lse == nullptr || args.q.data == nullptr || args.k.data == nullptr ||
      args.v.data == nullptr)
    cuda_launch::fail_kernel_argument(name, "out, lse, q, k and v must not be null");
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (flash_attention_forward_supports(shape, args)) return flash_attention_forward(shape, args, stream);
  }
  const int key_stride = odd_stride(static_cast<int>(shape.dim));
  with_dims_per_lane<ForwardKernel, T>(shape.dim, [&](auto chosen) {
    constexpr int padded = padded_dim(decltype(chosen)::kDims);
    const std::size_t shared_floats = kWarps * kForwardQueriesPerWarp * padded + kKeyTile * key_stride +
                                      kKeyTile * padded + kWarps * kKeyTile;
    const dim3 grid(tiles(shape.tq, kWarps * kForwardQueriesPerWarp), static_cast<unsigned>(shape.heads),
                    static_cast<unsigned>(shape.batch));
    auto* const launch = decltype(chosen)::kernel;
    KILN_LAUNCH_NAMED(name, launch, grid, dim3(kThreads), shared_floats * sizeof(float), stream, shape, args);
  });
}

template <class T>
void launch_backward(const AttentionShape& shape, const AttentionBackward<T>& args, cudaStream_t stream) {
  constexpr const char* name = "attention_backward_kernel";
  check_shape(name, shape);
  if (shape.batch == 0 || shape.tk == 0) return;
  if (args.dq.data == nullptr || args.dk.data == nullptr || args.dv.data == nullptr || args.dout.data == nullptr ||
      args.q.data == nullptr || args.k.data == nullptr || args.v.data == nullptr || args.out.data == nullptr ||
      args.lse == nullptr)
    cuda_launch::fail_kernel_argument(name, "dq, dk, dv, dout, q, k, v, out and lse must not be null");
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (flash_attention_backward_supports(shape, args)) return flash_attention_backward(shape, args, stream);
  }
  const int key_stride = odd_stride(static_cast<int>(shape.dim));
  if (shape.tq > 0) {
    with_dims_per_lane<DqKernel, T>(shape.dim, [&](auto chosen) {
      constexpr int padded = padded_dim(decltype(chosen)::kDims);
      const std::size_t shared_floats =
          2 * kWarps * kGradQueriesPerWarp * padded + 2 * kKeyTile * key_stride + kWarps * kKeyTile;
      const dim3 grid(tiles(shape.tq, kWarps * kGradQueriesPerWarp), static_cast<unsigned>(shape.heads),
                      static_cast<unsigned>(shape.batch));
      auto* const launch = decltype(chosen)::kernel;
      KILN_LAUNCH_NAMED("attention_dq_kernel", launch, grid, dim3(kThreads), shared_floats * sizeof(float), stream,
                        shape, args);
    });
  }
  with_dims_per_lane<DkDvKernel, T>(shape.dim, [&](auto chosen) {
    constexpr int padded = padded_dim(decltype(chosen)::kDims);
    const std::size_t shared_floats = 2 * kKeyTile * key_stride + 2 * kWarps * padded + 2 * kWarps * kKeyTile;
    const dim3 grid(tiles(shape.tk, kKeyTile), static_cast<unsigned>(shape.kv_heads), static_cast<unsigned>(shape.batch));
    auto* const launch = decltype(chosen)::kernel;
    KILN_LAUNCH_NAMED("attention_dkdv_kernel", launch, grid, dim3(kThreads), shared_floats * sizeof(float), stream,
                      shape, args);
  });
}

}  // namespace

void attention_forward(const AttentionShape& shape, const AttentionForward<float>& args, cudaStream_t stream) {
  launch_forward(shape, args, stream);
}
void attention_forward(const AttentionShape& shape, const AttentionForward<__nv_bfloat16>& args,
                       cudaStream_t stream) {
  launch_forward(shape, args, stream);
}
void attention_backward(const AttentionShape& shape, const AttentionBackward<float>& args, cudaStream_t stream) {
  launch_backward(shape, args, stream);
}
void attention_backward(const AttentionShape& shape, const AttentionBackward<__nv_bfloat16>& args,
                        cudaStream_t stream) {
  launch_backward(shape, args, stream);
}

}  // namespace kiln::KILN_CUDA_NS
