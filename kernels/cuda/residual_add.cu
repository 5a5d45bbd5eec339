// Residual add: y[i] = a[i] + b[i], i < n (flat, contiguous).
//   a, b, y [n]   f32, or bf16 storage (fp32 sum, rounded to nearest even once)
// Memory-bound: each thread moves 16-byte packs in a grid-stride loop (Pack: 4 f32 or 8 bf16);
// the n % width elements after the last whole pack, or all of them when a pointer is not
// 16-byte aligned, go through a scalar grid-stride tail.
#include "kernels/cuda/residual_add.hpp"

#include <algorithm>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kThreads = 256;
constexpr std::int64_t kMaxBlocks = 132 * 16;  // 16 blocks of 256 per H100/H200 SM: enough in flight

template <class T>
__global__ void __launch_bounds__(kThreads) residual_add_kernel(T* y, const T* a, const T* b, std::int64_t packs,
                                                                std::int64_t n) {
  constexpr int width = Pack<T>::kWidth;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::int64_t pack = first; pack < packs; pack += stride) {
    float lhs[width], rhs[width];
    Pack<T>::load(a + pack * width, lhs);
    Pack<T>::load(b + pack * width, rhs);
    for (int i = 0; i < width; ++i) lhs[i] += rhs[i];
    Pack<T>::store(y + pack * width, lhs);
  }
  for (std::int64_t i = packs * width + first; i < n; i += stride) y[i] = from_fp32<T>(to_fp32(a[i]) + to_fp32(b[i]));
}

template <class T>
void launch_residual_add(T* y, const T* a, const T* b, std::int64_t n, cudaStream_t stream) {
  if (n < 0) cuda_launch::fail_kernel_argument("residual_add_kernel", "the element count is negative");
  if (n > 0 && (!y || !a || !b)) cuda_launch::fail_kernel_argument("residual_add_kernel", "y, a and b must not be null");
  if (n == 0) return;
  const bool vectorised = aligned_16(y) && aligned_16(a) && aligned_16(b);
  const std::int64_t packs = vectorised ? n / Pack<T>::kWidth : 0;
  const std::int64_t work = std::max<std::int64_t>(packs, n - packs * Pack<T>::kWidth);
  const auto blocks = static_cast<unsigned>(std::min(kMaxBlocks, (work + kThreads - 1) / kThreads));
  KILN_LAUNCH(residual_add_kernel<T>, dim3(blocks), dim3(kThreads), 0, stream, y, a, b, packs, n);
}

}  // namespace

void residual_add(float* y, const float* a, const float* b, std::int64_t n, cudaStream_t stream) {
  launch_residual_add(y, a, b, n, stream);
}

void residual_add(__nv_bfloat16* y, const __nv_bfloat16* a, const __nv_bfloat16* b, std::int64_t n,
                  cudaStream_t stream) {
  launch_residual_add(y, a, b, n, stream);
}

}  // namespace kiln::KILN_CUDA_NS
