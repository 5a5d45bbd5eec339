#pragma once
// Residual add on the device: y = a + b over n contiguous elements (f32, or bf16 storage with
// the sum in fp32 and one round to nearest even). y may alias a or b.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

void residual_add(float* y, const float* a, const float* b, std::int64_t n, cudaStream_t stream);
void residual_add(__nv_bfloat16* y, const __nv_bfloat16* a, const __nv_bfloat16* b, std::int64_t n,
                  cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
