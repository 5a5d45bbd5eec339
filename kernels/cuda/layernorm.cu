// LayerNorm forward and backward.
//   x, y, dy, dx [rows, channels]; w, b [channels]; mean, rstd [rows] f32; dw, db [channels] f32
//   f32, or bf16 storage with fp32 arithmetic
// Forward and the input gradient: one warp per row, blocks of 8 warps striding over rows, so
// any row count fits one grid. Each lane takes a strided share of the row (16-byte packs when
// channels is a multiple of the pack width and every pointer is 16-byte aligned, then every
// row start is too; one element at a time otherwise); row sums are butterfly shuffles, so
// every lane holds the same statistics. The forward takes two statistics passes (mean, then
// squared deviations, as the CPU op: no E[x^2] - mean^2 cancellation) and a write pass; the
// re-reads of a row hit L1/L2. Weight and bias gradients: norm_weight_grads.cuh (per-chunk
// partials, then a fixed-order sum; no atomics).
#include "kernels/cuda/layernorm.hpp"

#include <algorithm>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/element_group.cuh"
#include "kernels/cuda/norm_weight_grads.cuh"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kThreads = kWarpsPerBlock * 32;
constexpr std::int64_t kMaxBlocks = 132 * 8;

struct WarpRows {  // the rows a warp visits: row = first, first + stride, ...
  std::int64_t first, stride;
  int lane;
};
__device__ __forceinline__ WarpRows warp_rows() {
  return {static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32,
          static_cast<std::int64_t>(gridDim.x) * kWarpsPerBlock, static_cast<int>(threadIdx.x % 32)};
}

template <class T, bool kPacked>
__device__ float row_mean(const T* x, int channels, int lane) {
  using Group = ElementGroup<T, kPacked>;
  float sum = 0.0f;
  for (int c = lane * Group::kWidth; c < channels; c += 32 * Group::kWidth) {
    float values[Group::kWidth];
    Group::load(x + c, values);
    for (int i = 0; i < Group::kWidth; ++i) sum += values[i];
  }
  return warp_sum(sum) / static_cast<float>(channels);
}

template <class T, bool kPacked>
__device__ float row_rstd(const T* x, int channels, int lane, float mean, float eps) {
  using Group = ElementGroup<T, kPacked>;
  float squares = 0.0f;
  for (int c = lane * Group::kWidth; c < channels; c += 32 * Group::kWidth) {
    float values[Group::kWidth];
    Group::load(x + c, values);
    for (int i = 0; i < Group::kWidth; ++i) squares += (values[i] - mean) * (values[i] - mean);
  }
  return rsqrtf(warp_sum(squares) / static_cast<float>(channels) + eps);
}

template <class T, bool kPacked>
__device__ void write_normalised_row(T* y, const T* x, const T* w, const T* b, int channels, int lane, float mean,
                                     float rstd) {
  using Group = ElementGroup<T, kPacked>;
  for (int c = lane * Group::kWidth; c < channels; c += 32 * Group::kWidth) {
    float values[Group::kWidth], weights[Group::kWidth], biases[Group::kWidth];
    Group::load(x + c, values);
    Group::load(w + c, weights);
    Group::load(b + c, biases);
    for (int i = 0; i < Group::kWidth; ++i) values[i] = (values[i] - mean) * rstd * weights[i] + biases[i];
    Group::store(y + c, values);
  }
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads)
    layernorm_forward_kernel(T* y, float* mean, float* rstd, const T* x, const T* w, const T* b, std::int64_t rows,
                             int channels, float eps) {
  const WarpRows rows_of_warp = warp_rows();
  const int lane = rows_of_warp.lane;
  for (std::int64_t row = rows_of_warp.first; row < rows; row += rows_of_warp.stride) {  // uniform per warp
    const T* const x_row = x + row * channels;
    const float row_mean_value = row_mean<T, kPacked>(x_row, channels, lane);
    const float row_rstd_value = row_rstd<T, kPacked>(x_row, channels, lane, row_mean_value, eps);
    if (lane == 0 && mean) mean[row] = row_mean_value;
    if (lane == 0 && rstd) rstd[row] = row_rstd_value;
    write_normalised_row<T, kPacked>(y + row * channels, x_row, w, b, channels, lane, row_mean_value, row_rstd_value);
  }
}

// The two row means the input gradient needs: mean_c(g) and mean_c(g * xhat), g = dy * w.
struct GradientMeans {
  float g, g_xhat;
};
template <class T, bool kPacked>
__device__ GradientMeans row_gradient_means(const T* dy, const T* x, const T* w, int channels, int lane, float mean,
                                            float rstd) {
  using Group = ElementGroup<T, kPacked>;
  float g_sum = 0.0f, g_xhat_sum = 0.0f;
  for (int c = lane * Group::kWidth; c < channels; c += 32 * Group::kWidth) {
    float gradient[Group::kWidth], input[Group::kWidth], weights[Group::kWidth];
    Group::load(dy + c, gradient);
    Group::load(x + c, input);
    Group::load(w + c, weights);
    for (int i = 0; i < Group::kWidth; ++i) {
      const float g = gradient[i] * weights[i];
      g_sum += g;
      g_xhat_sum += g * ((input[i] - mean) * rstd);
    }
  }
  const float inverse_channels = 1.0f / static_cast<float>(channels);
  return {warp_sum(g_sum) * inverse_channels, warp_sum(g_xhat_sum) * inverse_channels};
}

template <class T, bool kPacked>
__device__ void write_input_gradient_row(T* dx, const T* dy, const T* x, const T* w, int channels, int lane,
                                         float mean, float rstd, GradientMeans means, bool accumulate) {
  using Group = ElementGroup<T, kPacked>;
  for (int c = lane * Group::kWidth; c < channels; c += 32 * Group::kWidth) {
    float gradient[Group::kWidth], input[Group::kWidth], weights[Group::kWidth], previous[Group::kWidth];
    Group::load(dy + c, gradient);
    Group::load(x + c, input);
    Group::load(w + c, weights);
    if (accumulate) Group::load(dx + c, previous);
    for (int i = 0; i < Group::kWidth; ++i) {
      const float xhat = (input[i] - mean) * rstd;
      const float local = rstd * (gradient[i] * weights[i] - means.g - xhat * means.g_xhat);
      gradient[i] = accumulate ? previous[i] + local : local;  // a select: an overwritten dx may hold NaN
    }
    Group::store(dx + c, gradient);
  }
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads)
    layernorm_input_grad_kernel(T* dx, const T* dy, const T* x, const T* w, const float* mean, const float* rstd,
                                std::int64_t rows, int channels, bool accumulate) {
  const WarpRows rows_of_warp = warp_rows();
  const int lane = rows_of_warp.lane;
  for (std::int64_t row = rows_of_warp.first; row < rows; row += rows_of_warp.stride) {  // uniform per warp
    const std::int64_t offset = row * channels;
    const GradientMeans means =
        row_gradient_means<T, kPacked>(dy + offset, x + offset, w, channels, lane, mean[row], rstd[row]);
    write_input_gradient_row<T, kPacked>(dx + offset, dy + offset, x + offset, w, channels, lane, mean[row], rstd[row],
                                         means, accumulate);
  }
}

void check_shape(const char* kernel, std::int64_t rows, std::int64_t channels) {
  if (rows < 0 || channels <= 0 || channels > (std::int64_t{1} << 30))
    cuda_launch::fail_kernel_argument(kernel, "rows must be >= 0 and channels in 1..2^30");
}

unsigned row_blocks(std::int64_t rows) {
  return static_cast<unsigned>(std::min(kMaxBlocks, (rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
}

template <class T>
void launch_layernorm_forward(T* y, float* mean, float* rstd, const T* x, const T* w, const T* b, std::int64_t rows,
                              std::int64_t channels, float eps, cudaStream_t stream) {
  constexpr const char* name = "layernorm_forward_kernel";
  check_shape(name, rows, channels);
  if (rows == 0) return;
  if (!y || !x || !w || !b) cuda_launch::fail_kernel_argument(name, "y, x, w and b must not be null");
  const bool packed =
      channels % Pack<T>::kWidth == 0 && aligned_16(y) && aligned_16(x) && aligned_16(w) && aligned_16(b);
  auto* const kernel = packed ? &layernorm_forward_kernel<T, true> : &layernorm_forward_kernel<T, false>;
  KILN_LAUNCH_NAMED(name, kernel, dim3(row_blocks(rows)), dim3(kThreads), 0, stream, y, mean, rstd, x, w, b, rows,
                    static_cast<int>(channels), eps);
}

template <class T>
void launch_layernorm_backward(T* dx, float* dw, float* db, const T* dy, const T* x, const T* w, const float* mean,
                               const float* rstd, std::int64_t rows, std::int64_t channels, bool accumulate_dx,
                               void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  constexpr const char* name = "layernorm_backward";
  check_shape(name, rows, channels);
  if (rows == 0) return;
  if (!dy || !x || !w || !mean || !rstd)
    cuda_launch::fail_kernel_argument(name, "dy, x, w, mean and rstd must not be null");
  const int c = static_cast<int>(channels);
  if (dx) {
    const bool packed =
        channels % Pack<T>::kWidth == 0 && aligned_16(dx) && aligned_16(dy) && aligned_16(x) && aligned_16(w);
    auto* const kernel = packed ? &layernorm_input_grad_kernel<T, true> : &layernorm_input_grad_kernel<T, false>;
    KILN_LAUNCH_NAMED("layernorm_input_grad_kernel", kernel, dim3(row_blocks(rows)), dim3(kThreads), 0, stream, dx,
                      dy, x, w, mean, rstd, rows, c, accumulate_dx);
  }
  if (!dw && !db) return;
  if (!workspace || workspace_bytes < layernorm_backward_workspace_bytes(rows, channels))
    cuda_launch::fail_kernel_argument(name, "the workspace is null or smaller than layernorm_backward_workspace_bytes");
  float* const dw_partial = static_cast<float*>(workspace);
  float* const db_partial = dw_partial + norm_weight_grads::chunk_plan(rows).chunks * channels;
  norm_weight_grads::launch<T, true>(dw, db, dw_partial, db_partial, dy, x, mean, rstd, rows, c, stream);
}

}  // namespace

std::size_t layernorm_backward_workspace_bytes(std::int64_t rows, std::int64_t channels) {
  check_shape("layernorm_backward", rows, channels);
  return static_cast<std::size_t>(norm_weight_grads::workspace_bytes(rows, channels, 2));
}

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       std::int64_t rows, std::int64_t channels, float eps, cudaStream_t stream) {
  launch_layernorm_forward(y, mean, rstd, x, w, b, rows, channels, eps, stream);
}
void layernorm_forward(__nv_bfloat16* y, float* mean, float* rstd, const __nv_bfloat16* x, const __nv_bfloat16* w,
                       const __nv_bfloat16* b, std::int64_t rows, std::int64_t channels, float eps,
                       cudaStream_t stream) {
  launch_layernorm_forward(y, mean, rstd, x, w, b, rows, channels, eps, stream);
}
void layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                        const float* mean, const float* rstd, std::int64_t rows, std::int64_t channels,
                        bool accumulate_dx, void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  launch_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, rows, channels, accumulate_dx, workspace,
                            workspace_bytes, stream);
}
void layernorm_backward(__nv_bfloat16* dx, float* dw, float* db, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                        const __nv_bfloat16* w, const float* mean, const float* rstd, std::int64_t rows,
                        std::int64_t channels, bool accumulate_dx, void* workspace, std::size_t workspace_bytes,
                        cudaStream_t stream) {
  launch_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, rows, channels, accumulate_dx, workspace,
                            workspace_bytes, stream);
}

}  // namespace kiln::KILN_CUDA_NS
