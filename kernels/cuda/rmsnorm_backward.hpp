#pragma once
// RMSNorm backward on the device (Llama), as ops::rmsnorm_backward; the forward is rmsnorm.hpp.
//   dy, x, dx [rows, channels];  w [channels];  rstd [rows] f32 (saved by the forward)
//   xhat = x * rstd,  g = dy * w
//   dx (=|+=) rstd * (g - xhat * mean_c(g * xhat)),   dw += sum_rows dy * xhat  (f32, fixed order)
// dy, x, w, dx f32, or bf16 storage (fp32 math, dx rounded once); rstd and dw always f32.
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

// Bytes of device workspace rmsnorm_backward needs for dw (allocate once per shape).
std::size_t rmsnorm_backward_workspace_bytes(std::int64_t rows, std::int64_t channels);

// dx may be null (no input gradient), dw may be null (not wanted; then no workspace is needed).
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      std::int64_t rows, std::int64_t channels, bool accumulate_dx, void* workspace,
                      std::size_t workspace_bytes, cudaStream_t stream);
void rmsnorm_backward(__nv_bfloat16* dx, float* dw, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                      const __nv_bfloat16* w, const float* rstd, std::int64_t rows, std::int64_t channels,
                      bool accumulate_dx, void* workspace, std::size_t workspace_bytes, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
