#pragma once
// GELU (tanh approximation, as ops::gelu_forward / torch's approximate='tanh') on the device:
//   y = 0.5 x (1 + tanh(u)) = x sigmoid(2u),  u = sqrt(2/pi) (x + 0.044715 x^3)
// x, y, dy, dx [n] flat and contiguous, f32 or bf16 storage (fp32 math, one rounding per
// stored value). y may be x; dx may be dy (each element is read before it is written).
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

void gelu_forward(float* y, const float* x, std::int64_t n, cudaStream_t stream);
void gelu_forward(__nv_bfloat16* y, const __nv_bfloat16* x, std::int64_t n, cudaStream_t stream);
// dx = dy * gelu'(x), or dx += dy * gelu'(x) when accumulate_dx.
void gelu_backward(float* dx, const float* dy, const float* x, std::int64_t n, bool accumulate_dx,
                   cudaStream_t stream);
void gelu_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x, std::int64_t n,
                   bool accumulate_dx, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
