// RMSNorm backward (the forward is rmsnorm.cu).
//   dy, x, dx [rows, channels]; w [channels]; rstd [rows] f32; dw [channels] f32
//   f32, or bf16 storage with fp32 arithmetic
// Input gradient: one warp per row, blocks of 8 warps striding over rows (any row count fits
// one grid). A lane takes a strided share of the row, 16-byte packs when channels is a
// multiple of the pack width and every pointer is 16-byte aligned, one element otherwise; the
// row sum of g * xhat is a butterfly shuffle, so every lane holds the same value; the second
// pass over the row (the write) re-reads it from L1/L2. Weight gradient:
// norm_weight_grads.cuh (per-chunk partials, then a fixed-order sum; no atomics).
#include "kernels/cuda/rmsnorm_backward.hpp"

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

// mean_c(g * xhat) of one row, g = dy * w, xhat = x * rstd.
template <class T, bool kPacked>
__device__ float row_mean_g_xhat(const T* dy, const T* x, const T* w, int channels, int lane, float rstd) {
  using Group = ElementGroup<T, kPacked>;
  float sum = 0.0f;
  for (int c = lane * Group::kWidth; c < channels; c += 32 * Group::kWidth) {
    float gradient[Group::kWidth], input[Group::kWidth], weights[Group::kWidth];
    Group::load(dy + c, gradient);
    Group::load(x + c, input);
    Group::load(w + c, weights);
    for (int i = 0; i < Group::kWidth; ++i) sum += gradient[i] * weights[i] * (input[i] * rstd);
  }
  return warp_sum(sum) / static_cast<float>(channels);
}

template <class T, bool kPacked>
__device__ void write_input_gradient_row(T* dx, const T* dy, const T* x, const T* w, int channels, int lane,
                                         float rstd, float mean_g_xhat, bool accumulate) {
  using Group = ElementGroup<T, kPacked>;
  for (int c = lane * Group::kWidth; c < channels; c += 32 * Group::kWidth) {
    float gradient[Group::kWidth], input[Group::kWidth], weights[Group::kWidth], previous[Group::kWidth];
    Group::load(dy + c, gradient);
    Group::load(x + c, input);
    Group::load(w + c, weights);
    if (accumulate) Group::load(dx + c, previous);
    for (int i = 0; i < Group::kWidth; ++i) {
      const float local = rstd * (gradient[i] * weights[i] - (input[i] * rstd) * mean_g_xhat);
      gradient[i] = accumulate ? previous[i] + local : local;  // a select: an overwritten dx may hold NaN
    }
    Group::store(dx + c, gradient);
  }
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads)
    rmsnorm_input_grad_kernel(T* dx, const T* dy, const T* x, const T* w, const float* rstd, std::int64_t rows,
                              int channels, bool accumulate) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const std::int64_t warp = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kWarpsPerBlock;
  for (std::int64_t row = warp; row < rows; row += warps) {  // uniform per warp: all lanes shuffle
    const std::int64_t offset = row * channels;
    const float mean_g_xhat = row_mean_g_xhat<T, kPacked>(dy + offset, x + offset, w, channels, lane, rstd[row]);
    write_input_gradient_row<T, kPacked>(dx + offset, dy + offset, x + offset, w, channels, lane, rstd[row],
                                         mean_g_xhat, accumulate);
  }
}

void check_shape(std::int64_t rows, std::int64_t channels) {
  if (rows < 0 || channels <= 0 || channels > (std::int64_t{1} << 30))
    cuda_launch::fail_kernel_argument("rmsnorm_backward", "rows must be >= 0 and channels in 1..2^30");
}

template <class T>
void launch_rmsnorm_backward(T* dx, float* dw, const T* dy, const T* x, const T* w, const float* rstd,
                             std::int64_t rows, std::int64_t channels, bool accumulate_dx, void* workspace,
                             std::size_t workspace_bytes, cudaStream_t stream) {
  check_shape(rows, channels);
  if (rows == 0) return;
  if (!dy || !x || !w || !rstd)
    cuda_launch::fail_kernel_argument("rmsnorm_backward", "dy, x, w and rstd must not be null");
  const int c = static_cast<int>(channels);
  if (dx) {
    const bool packed =
        channels % Pack<T>::kWidth == 0 && aligned_16(dx) && aligned_16(dy) && aligned_16(x) && aligned_16(w);
    const auto blocks = static_cast<unsigned>(std::min(kMaxBlocks, (rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
    auto* const kernel = packed ? &rmsnorm_input_grad_kernel<T, true> : &rmsnorm_input_grad_kernel<T, false>;
    KILN_LAUNCH_NAMED("rmsnorm_input_grad_kernel", kernel, dim3(blocks), dim3(kThreads), 0, stream, dx, dy, x, w, rstd,
                      rows, c, accumulate_dx);
  }
  if (!dw) return;
  if (!workspace || workspace_bytes < rmsnorm_backward_workspace_bytes(rows, channels))
    cuda_launch::fail_kernel_argument("rmsnorm_backward",
                                      "the workspace is null or smaller than rmsnorm_backward_workspace_bytes");
  float* const dw_partial = static_cast<float*>(workspace);
  norm_weight_grads::launch<T, false>(dw, nullptr, dw_partial, nullptr, dy, x, nullptr, rstd, rows, c, stream);
}

}  // namespace

std::size_t rmsnorm_backward_workspace_bytes(std::int64_t rows, std::int64_t channels) {
  check_shape(rows, channels);
  return static_cast<std::size_t>(norm_weight_grads::workspace_bytes(rows, channels, 1));
}

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      std::int64_t rows, std::int64_t channels, bool accumulate_dx, void* workspace,
                      std::size_t workspace_bytes, cudaStream_t stream) {
  launch_rmsnorm_backward(dx, dw, dy, x, w, rstd, rows, channels, accumulate_dx, workspace, workspace_bytes, stream);
}
void rmsnorm_backward(__nv_bfloat16* dx, float* dw, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                      const __nv_bfloat16* w, const float* rstd, std::int64_t rows, std::int64_t channels,
                      bool accumulate_dx, void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  launch_rmsnorm_backward(dx, dw, dy, x, w, rstd, rows, channels, accumulate_dx, workspace, workspace_bytes, stream);
}

}  // namespace kiln::KILN_CUDA_NS
