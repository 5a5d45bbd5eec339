#pragma once
// Same-dtype copy between two device tensors of equal shape and any strides (up to
// kStridedCopyDims dims), for the views a flat copy cannot take: the k and v heads sliced out
// of the fused qkv buffer into the KV cache while decoding, a column block of a matrix. A
// gather/scatter, not a hot path: contiguous copies are cudaMemcpyAsync.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

inline constexpr int kStridedCopyDims = 5;

// Extents and strides in elements; unused leading dims have extent 1.
struct StridedCopyLayout {
  std::int64_t shape[kStridedCopyDims] = {};
  std::int64_t dst_strides[kStridedCopyDims] = {};
  std::int64_t src_strides[kStridedCopyDims] = {};
};

// element_bytes: 1, 2, 4 or 8.
void strided_copy(void* dst, const void* src, std::size_t element_bytes, const StridedCopyLayout& layout,
                  cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
