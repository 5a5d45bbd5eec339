#pragma once
// Dtype casts on the device: f32 -> bf16 (round to nearest even, NaN stays NaN, overflow to
// inf as cvt.rn.bf16.f32 does) and bf16 -> f32 (exact). The backward of a cast is the cast the
// other way, so both directions live here.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

void cast(__nv_bfloat16* y, const float* x, std::int64_t n, cudaStream_t stream);
void cast(float* y, const __nv_bfloat16* x, std::int64_t n, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
