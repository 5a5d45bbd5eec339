#pragma once
// RMSNorm forward on the device (Llama): per row r of x [rows, channels]
//   rstd[r] = 1 / sqrt(mean(x[r]^2) + eps),  y[r] = x[r] * rstd[r] * w
// x, w, y f32, or bf16 storage (fp32 statistics and products, y rounded once); rstd f32
// [rows], saved for the backward (may be null).
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, std::int64_t rows, std::int64_t channels,
                     float eps, cudaStream_t stream);
void rmsnorm_forward(__nv_bfloat16* y, float* rstd, const __nv_bfloat16* x, const __nv_bfloat16* w, std::int64_t rows,
                     std::int64_t channels, float eps, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
