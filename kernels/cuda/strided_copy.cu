// dst[i0..i4] = src[i0..i4] over a [n0, n1, n2, n3, n4] index space with each side's own
// element strides. One thread per element in a grid-stride loop over the row-major index,
// which is split into coordinates once per element; the innermost dim is usually contiguous on
// both sides, so neighbouring threads touch neighbouring bytes.
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/element_group.cuh"
#include "kernels/cuda/strided_copy.hpp"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kThreads = 256;

template <class Word>
__global__ void __launch_bounds__(kThreads)
    strided_copy_kernel(Word* dst, const Word* src, StridedCopyLayout layout, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    std::int64_t rest = i, to = 0, from = 0;
    for (int d = kStridedCopyDims - 1; d >= 0; --d) {
      const std::int64_t coordinate = rest % layout.shape[d];
      rest /= layout.shape[d];
      to += coordinate * layout.dst_strides[d];
      from += coordinate * layout.src_strides[d];
    }
    dst[to] = src[from];
  }
}

template <class Word>
void launch(void* dst, const void* src, const StridedCopyLayout& layout, std::int64_t n, cudaStream_t stream) {
  auto* const kernel = &strided_copy_kernel<Word>;
  KILN_LAUNCH_NAMED("strided_copy_kernel", kernel, dim3(grid_stride_blocks(n, kThreads)), dim3(kThreads), 0, stream,
                    static_cast<Word*>(dst), static_cast<const Word*>(src), layout, n);
}

}  // namespace

void strided_copy(void* dst, const void* src, std::size_t element_bytes, const StridedCopyLayout& layout,
                  cudaStream_t stream) {
  std::int64_t n = 1;
  for (const std::int64_t extent : layout.shape) {
    if (extent <= 0) cuda_launch::fail_kernel_argument("strided_copy_kernel", "every extent must be positive");
    n *= extent;
  }
  if (!dst || !src) cuda_launch::fail_kernel_argument("strided_copy_kernel", "dst and src must not be null");
  switch (element_bytes) {
    case 1: return launch<std::uint8_t>(dst, src, layout, n, stream);
    case 2: return launch<std::uint16_t>(dst, src, layout, n, stream);
    case 4: return launch<std::uint32_t>(dst, src, layout, n, stream);
    case 8: return launch<std::uint64_t>(dst, src, layout, n, stream);
    default: cuda_launch::fail_kernel_argument("strided_copy_kernel", "elements must be 1, 2, 4 or 8 bytes");
  }
}

}  // namespace kiln::KILN_CUDA_NS
