#pragma once
// Warp-wide reductions by butterfly shuffles: every lane ends with the same, bitwise identical
// value (each step adds the same two numbers on both lanes), so a reduction does not depend on
// which lane reads it, and no shared memory is touched.
#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

inline constexpr unsigned kFullWarp = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(kFullWarp, value, offset);
  return value;
}

__device__ __forceinline__ float warp_max(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(kFullWarp, value, offset));
  return value;
}

}  // namespace kiln::KILN_CUDA_NS

namespace kiln::KILN_CUDA_NS {

// The f64 butterfly, for reductions kiln accumulates in double (the gradient norm).
__device__ __forceinline__ double warp_sum(double value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(kFullWarp, value, offset);
  return value;
}

}  // namespace kiln::KILN_CUDA_NS
