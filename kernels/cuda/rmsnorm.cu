// RMSNorm forward, one warp per row.
//   x, y [rows, channels], w [channels]   f32, or bf16 storage with fp32 arithmetic
//   rstd [rows] f32 (optional)
// A warp walks its row twice: once for the sum of squares (each lane a strided share, reduced
// by butterfly shuffles, so every lane holds the same rstd), once to write y; the second read
// of x hits L2 for any row that fits (channels up to ~16k). 16-byte packs when channels is a
// multiple of the pack width and every pointer is 16-byte aligned (then every row start is),
// scalar otherwise. Blocks of 8 warps stride over rows, so any number of rows fits one grid.
#include "kernels/cuda/rmsnorm.hpp"

#include <algorithm>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kThreads = kWarpsPerBlock * 32;
constexpr std::int64_t kMaxBlocks = 132 * 8;

template <class T, bool kPacked>
__device__ float row_sum_of_squares(const T* row, int channels, int lane) {
  float sum = 0.0f;
  if (kPacked) {
    constexpr int width = Pack<T>::kWidth;
    for (int c = lane * width; c < channels; c += 32 * width) {
      float values[width];
      Pack<T>::load(row + c, values);
      for (int i = 0; i < width; ++i) sum += values[i] * values[i];
    }
  } else {
    for (int c = lane; c < channels; c += 32) {
      const float value = to_fp32(row[c]);
      sum += value * value;
    }
  }
  return warp_sum(sum);
}

template <class T, bool kPacked>
__device__ void write_normalised_row(T* y, const T* x, const T* w, int channels, int lane, float rstd) {
  if (kPacked) {
    constexpr int width = Pack<T>::kWidth;
    for (int c = lane * width; c < channels; c += 32 * width) {
      float values[width], weights[width];
      Pack<T>::load(x + c, values);
      Pack<T>::load(w + c, weights);
      for (int i = 0; i < width; ++i) values[i] = values[i] * rstd * weights[i];
      Pack<T>::store(y + c, values);
    }
  } else {
    for (int c = lane; c < channels; c += 32) y[c] = from_fp32<T>(to_fp32(x[c]) * rstd * to_fp32(w[c]));
  }
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads) rmsnorm_forward_kernel(T* y, float* rstd, const T* x, const T* w,
                                                                   std::int64_t rows, int channels, float eps) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const std::int64_t warp = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kWarpsPerBlock;
  for (std::int64_t row = warp; row < rows; row += warps) {  // uniform per warp: all lanes shuffle
    const std::int64_t offset = row * channels;
    const float sum = row_sum_of_squares<T, kPacked>(x + offset, channels, lane);
    const float row_rstd = rsqrtf(sum / static_cast<float>(channels) + eps);
    if (lane == 0 && rstd) rstd[row] = row_rstd;
    write_normalised_row<T, kPacked>(y + offset, x + offset, w, channels, lane, row_rstd);
  }
}

template <class T>
void launch_rmsnorm_forward(T* y, float* rstd, const T* x, const T* w, std::int64_t rows, std::int64_t channels,
                            float eps, cudaStream_t stream) {
  if (rows < 0 || channels <= 0 || channels > (std::int64_t{1} << 30))
    cuda_launch::fail_kernel_argument("rmsnorm_forward_kernel", "rows must be >= 0 and channels in 1..2^30");
  if (rows == 0) return;
  const bool packed = channels % Pack<T>::kWidth == 0 && aligned_16(y) && aligned_16(x) && aligned_16(w);
  const auto blocks = static_cast<unsigned>(std::min(kMaxBlocks, (rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
  const int c = static_cast<int>(channels);
  auto* const kernel = packed ? &rmsnorm_forward_kernel<T, true> : &rmsnorm_forward_kernel<T, false>;
  KILN_LAUNCH_NAMED("rmsnorm_forward_kernel", kernel, dim3(blocks), dim3(kThreads), 0, stream, y, rstd, x, w, rows, c,
                    eps);
}

}  // namespace

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, std::int64_t rows, std::int64_t channels,
                     float eps, cudaStream_t stream) {
  launch_rmsnorm_forward(y, rstd, x, w, rows, channels, eps, stream);
}

void rmsnorm_forward(__nv_bfloat16* y, float* rstd, const __nv_bfloat16* x, const __nv_bfloat16* w, std::int64_t rows,
                     std::int64_t channels, float eps, cudaStream_t stream) {
  launch_rmsnorm_forward(y, rstd, x, w, rows, channels, eps, stream);
}

}  // namespace kiln::KILN_CUDA_NS
