// Cast between f32 and bf16, flat and contiguous:
//   x [n] f32 -> y [n] bf16 (round to nearest even)      x [n] bf16 -> y [n] f32 (exact)
// Memory-bound: a thread converts 8 elements per step, one 16-byte bf16 pack against two
// 16-byte f32 packs, in a grid-stride loop; the n % 8 elements after the last whole group,
// or all of them when a pointer is not 16-byte aligned, take a scalar grid-stride tail.
#include "kernels/cuda/cast.hpp"

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/element_group.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kThreads = 256;
constexpr int kGroup = 8;  // one bf16 pack, two f32 packs

template <class T>
__device__ __forceinline__ void load_group(const T* address, float* values) {
  for (int i = 0; i < kGroup; i += Pack<T>::kWidth) Pack<T>::load(address + i, values + i);
}
template <class T>
__device__ __forceinline__ void store_group(T* address, const float* values) {
  for (int i = 0; i < kGroup; i += Pack<T>::kWidth) Pack<T>::store(address + i, values + i);
}

template <class Out, class In>
__global__ void __launch_bounds__(kThreads) cast_kernel(Out* y, const In* x, std::int64_t groups, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::int64_t group = first; group < groups; group += stride) {
    float values[kGroup];
    load_group(x + group * kGroup, values);
    store_group(y + group * kGroup, values);
  }
  for (std::int64_t i = groups * kGroup + first; i < n; i += stride) y[i] = from_fp32<Out>(to_fp32(x[i]));
}

template <class Out, class In>
void launch_cast(Out* y, const In* x, std::int64_t n, cudaStream_t stream) {
  if (n < 0) cuda_launch::fail_kernel_argument("cast_kernel", "the element count is negative");
  if (n > 0 && (!y || !x)) cuda_launch::fail_kernel_argument("cast_kernel", "x and y must not be null");
  if (n == 0) return;
  const std::int64_t groups = aligned_16(y) && aligned_16(x) ? n / kGroup : 0;
  const std::int64_t work = groups > n - groups * kGroup ? groups : n - groups * kGroup;
  auto* const kernel = &cast_kernel<Out, In>;  // named: the template's comma would split the macro argument
  KILN_LAUNCH_NAMED("cast_kernel", kernel, dim3(grid_stride_blocks(work, kThreads)), dim3(kThreads), 0, stream, y, x,
                    groups, n);
}

}  // namespace

void cast(__nv_bfloat16* y, const float* x, std::int64_t n, cudaStream_t stream) { launch_cast(y, x, n, stream); }
void cast(float* y, const __nv_bfloat16* x, std::int64_t n, cudaStream_t stream) { launch_cast(y, x, n, stream); }

}  // namespace kiln::KILN_CUDA_NS
