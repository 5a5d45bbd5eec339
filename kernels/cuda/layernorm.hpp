#pragma once
// LayerNorm (GPT-2) on the device, forward and backward, as ops::layernorm_forward/backward:
//   x, y, dy, dx [rows, channels];  w, b [channels];  mean, rstd [rows] f32
//   forward:  mean = mean_c(x),  rstd = 1 / sqrt(mean_c((x - mean)^2) + eps)  (biased variance),
//             y = (x - mean) * rstd * w + b
//   backward: xhat = (x - mean) * rstd,  g = dy * w
//             dx (=|+=) rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
//             dw += sum_rows dy * xhat,  db += sum_rows dy   (f32, fixed reduction order)
// x, y, w, b, dy, dx f32, or bf16 storage (fp32 statistics and math, one rounding per stored
// value); mean, rstd, dw, db always f32 (the mixed-precision rule: f32 weight gradients).
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

// mean and rstd may be null (inference needs neither).
void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       std::int64_t rows, std::int64_t channels, float eps, cudaStream_t stream);
void layernorm_forward(__nv_bfloat16* y, float* mean, float* rstd, const __nv_bfloat16* x, const __nv_bfloat16* w,
                       const __nv_bfloat16* b, std::int64_t rows, std::int64_t channels, float eps,
                       cudaStream_t stream);

// Bytes of device workspace layernorm_backward needs for dw/db (allocate once per shape; the
// backward never allocates). 0 when rows is 0.
std::size_t layernorm_backward_workspace_bytes(std::int64_t rows, std::int64_t channels);

// dx may be null (no input gradient); dw and db may each be null (not wanted). The workspace
// (16-byte aligned for the vector path, like any cudaMalloc pointer) is needed when dw or db is
// wanted.
void layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                        const float* mean, const float* rstd, std::int64_t rows, std::int64_t channels,
                        bool accumulate_dx, void* workspace, std::size_t workspace_bytes, cudaStream_t stream);
void layernorm_backward(__nv_bfloat16* dx, float* dw, float* db, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                        const __nv_bfloat16* w, const float* mean, const float* rstd, std::int64_t rows,
                        std::int64_t channels, bool accumulate_dx, void* workspace, std::size_t workspace_bytes,
                        cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
