// Accumulate: y[i] += x[i], i < n (flat, contiguous).
//   y, x [n]   f32, or bf16 storage (fp32 sum, rounded to nearest even once)
// No backward of its own: the gradient of y += x passes unchanged to both (ops::add_to).
// Memory-bound: 16-byte packs (4 f32, 8 bf16) in a grid-stride loop, a scalar grid-stride tail
// for the n % width rest, or for everything when a pointer is not 16-byte aligned. Each
// element is read and written by exactly one thread, so there is no race and no atomic.
#include "kernels/cuda/add_to.hpp"

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/element_group.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void __launch_bounds__(kThreads) add_to_kernel(T* y, const T* x, std::int64_t packs, std::int64_t n) {
  constexpr int width = Pack<T>::kWidth;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::int64_t pack = first; pack < packs; pack += stride) {
    float sum[width], addend[width];
    Pack<T>::load(y + pack * width, sum);
    Pack<T>::load(x + pack * width, addend);
    for (int i = 0; i < width; ++i) sum[i] += addend[i];
    Pack<T>::store(y + pack * width, sum);
  }
  for (std::int64_t i = packs * width + first; i < n; i += stride) y[i] = from_fp32<T>(to_fp32(y[i]) + to_fp32(x[i]));
}

template <class T>
void launch_add_to(T* y, const T* x, std::int64_t n, cudaStream_t stream) {
  if (n < 0) cuda_launch::fail_kernel_argument("add_to_kernel", "the element count is negative");
  if (n > 0 && (!y || !x)) cuda_launch::fail_kernel_argument("add_to_kernel", "x and y must not be null");
  if (n == 0) return;
  const std::int64_t packs = aligned_16(y) && aligned_16(x) ? n / Pack<T>::kWidth : 0;
  const std::int64_t rest = n - packs * Pack<T>::kWidth;
  KILN_LAUNCH(add_to_kernel<T>, dim3(grid_stride_blocks(packs > rest ? packs : rest, kThreads)), dim3(kThreads), 0,
              stream, y, x, packs, n);
}

}  // namespace

void add_to(float* y, const float* x, std::int64_t n, cudaStream_t stream) { launch_add_to(y, x, n, stream); }
void add_to(__nv_bfloat16* y, const __nv_bfloat16* x, std::int64_t n, cudaStream_t stream) {
  launch_add_to(y, x, n, stream);
}

}  // namespace kiln::KILN_CUDA_NS
