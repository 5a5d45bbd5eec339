// GELU-tanh forward and backward, elementwise over a flat contiguous tensor.
//   x, y [n]            forward:  y = x sigmoid(2u),  u = k (x + 0.044715 x^3),  k = sqrt(2/pi)
//   dy, x, dx [n]       backward: dx (=|+=) dy (s + 2 x s (1 - s) k (1 + 3 * 0.044715 x^2)),
//                                 s = sigmoid(2u)
//   f32, or bf16 storage (fp32 math, rounded to nearest even once per stored value)
// sigmoid(z) is 1 / (1 + exp(-z)) and 1 - s is 1 / (1 + exp(z)): no 1 - s cancellation, and
// both stay finite (0 or 1) when the exponential overflows. expf, not __expf: the kernel is
// memory-bound, so the accurate exponential costs nothing measurable.
// 16-byte packs in a grid-stride loop, a scalar grid-stride tail for the rest (or everything
// when a pointer is not 16-byte aligned).
#include "kernels/cuda/gelu.hpp"

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/element_group.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kThreads = 256;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

__device__ __forceinline__ float gelu_argument(float x) { return 2.0f * kSqrt2OverPi * (x + kCubic * x * x * x); }

__device__ __forceinline__ float gelu_value(float x) { return x / (1.0f + expf(-gelu_argument(x))); }

__device__ __forceinline__ float gelu_slope(float x) {
  const float z = gelu_argument(x);
  const float s = 1.0f / (1.0f + expf(-z));
  const float one_minus_s = 1.0f / (1.0f + expf(z));
  const float inner_slope = kSqrt2OverPi * (1.0f + 3.0f * kCubic * x * x);
  return s + 2.0f * x * s * one_minus_s * inner_slope;
}

// One group of elements: a 16-byte pack (kPacked) or a single element.
template <class T, bool kPacked>
__device__ __forceinline__ void gelu_forward_group(T* y, const T* x) {
  using Group = ElementGroup<T, kPacked>;
  float values[Group::kWidth];
  Group::load(x, values);
  for (int i = 0; i < Group::kWidth; ++i) values[i] = gelu_value(values[i]);
  Group::store(y, values);
}

template <class T, bool kPacked>
__device__ __forceinline__ void gelu_backward_group(T* dx, const T* dy, const T* x, bool accumulate) {
  using Group = ElementGroup<T, kPacked>;
  float gradient[Group::kWidth], input[Group::kWidth], previous[Group::kWidth];
  Group::load(dy, gradient);
  Group::load(x, input);
  if (accumulate) Group::load(dx, previous);
  for (int i = 0; i < Group::kWidth; ++i) {
    const float local = gradient[i] * gelu_slope(input[i]);
    gradient[i] = accumulate ? previous[i] + local : local;  // a select: an overwritten dx may hold NaN
  }
  Group::store(dx, gradient);
}

template <class T>
__global__ void __launch_bounds__(kThreads) gelu_forward_kernel(T* y, const T* x, std::int64_t packs, std::int64_t n) {
  constexpr int width = Pack<T>::kWidth;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::int64_t pack = first; pack < packs; pack += stride)
    gelu_forward_group<T, true>(y + pack * width, x + pack * width);
  for (std::int64_t i = packs * width + first; i < n; i += stride) gelu_forward_group<T, false>(y + i, x + i);
}

template <class T>
__global__ void __launch_bounds__(kThreads) gelu_backward_kernel(T* dx, const T* dy, const T* x, std::int64_t packs,
                                                                 std::int64_t n, bool accumulate) {
  constexpr int width = Pack<T>::kWidth;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::int64_t pack = first; pack < packs; pack += stride)
    gelu_backward_group<T, true>(dx + pack * width, dy + pack * width, x + pack * width, accumulate);
  for (std::int64_t i = packs * width + first; i < n; i += stride)
    gelu_backward_group<T, false>(dx + i, dy + i, x + i, accumulate);
}

// Whole packs when every pointer is aligned, else none; the blocks cover the larger loop.
template <class T>
std::int64_t packs_for(std::int64_t n, bool aligned) {
  return aligned ? n / Pack<T>::kWidth : 0;
}
template <class T>
unsigned blocks_for(std::int64_t n, std::int64_t packs) {
  const std::int64_t rest = n - packs * Pack<T>::kWidth;
  return grid_stride_blocks(packs > rest ? packs : rest, kThreads);
}

void check_count(const char* kernel, std::int64_t n, bool pointers_present) {
  if (n < 0) cuda_launch::fail_kernel_argument(kernel, "the element count is negative");
  if (n > 0 && !pointers_present) cuda_launch::fail_kernel_argument(kernel, "a tensor pointer is null");
}

template <class T>
void launch_gelu_forward(T* y, const T* x, std::int64_t n, cudaStream_t stream) {
  check_count("gelu_forward_kernel", n, y && x);
  if (n == 0) return;
  const std::int64_t packs = packs_for<T>(n, aligned_16(y) && aligned_16(x));
  KILN_LAUNCH(gelu_forward_kernel<T>, dim3(blocks_for<T>(n, packs)), dim3(kThreads), 0, stream, y, x, packs, n);
}

template <class T>
void launch_gelu_backward(T* dx, const T* dy, const T* x, std::int64_t n, bool accumulate, cudaStream_t stream) {
  check_count("gelu_backward_kernel", n, dx && dy && x);
  if (n == 0) return;
  const std::int64_t packs = packs_for<T>(n, aligned_16(dx) && aligned_16(dy) && aligned_16(x));
  KILN_LAUNCH(gelu_backward_kernel<T>, dim3(blocks_for<T>(n, packs)), dim3(kThreads), 0, stream, dx, dy, x, packs, n,
              accumulate);
}

}  // namespace

void gelu_forward(float* y, const float* x, std::int64_t n, cudaStream_t stream) {
  launch_gelu_forward(y, x, n, stream);
}
void gelu_forward(__nv_bfloat16* y, const __nv_bfloat16* x, std::int64_t n, cudaStream_t stream) {
  launch_gelu_forward(y, x, n, stream);
}
void gelu_backward(float* dx, const float* dy, const float* x, std::int64_t n, bool accumulate_dx,
                   cudaStream_t stream) {
  launch_gelu_backward(dx, dy, x, n, accumulate_dx, stream);
}
void gelu_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x, std::int64_t n,
                   bool accumulate_dx, cudaStream_t stream) {
  launch_gelu_backward(dx, dy, x, n, accumulate_dx, stream);
}

}  // namespace kiln::KILN_CUDA_NS
