#pragma once
// Accumulation on the device: y += x (the residual backward, gradient accumulation), flat and
// contiguous. f32, or bf16 storage (fp32 sum, rounded once to nearest even); f64 for the few
// scalars kiln sums in double on the device (a step's loss sum and token count).
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

void add_to(float* y, const float* x, std::int64_t n, cudaStream_t stream);
void add_to(__nv_bfloat16* y, const __nv_bfloat16* x, std::int64_t n, cudaStream_t stream);
void add_to(double* y, const double* x, std::int64_t n, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
