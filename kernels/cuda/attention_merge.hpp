#pragma once
// Ring attention's merge on the device, with the semantics of kiln::ops::merge_attention
// (kernels/cpu/attention_merge.hpp): f32, out/part [B, T, H, D] strided (unit inner stride),
// lse/part_lse [B, H, T] strided.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

struct MergeRows {
  std::int64_t batch = 0, seq = 0, heads = 0, dim = 0;
  std::int64_t out_strides[3] = {0, 0, 0};   // b, t, h of out
  std::int64_t part_strides[3] = {0, 0, 0};  // b, t, h of part
  std::int64_t lse_strides[3] = {0, 0, 0};   // b, h, t of lse
  std::int64_t part_lse_strides[3] = {0, 0, 0};
};

void merge_attention(float* out, float* lse, const float* part, const float* part_lse, const MergeRows& rows,
                     cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
