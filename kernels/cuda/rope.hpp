#pragma once
// Rotary position embedding on the device (Llama), forward and backward, with the pair
// convention of kiln::ops::rope_forward (Hugging Face rotate_half: dim i pairs with i + D/2):
//   y[i]       = x[i] cos(p f_i) - x[i + D/2] sin(p f_i)
//   y[i + D/2] = x[i + D/2] cos(p f_i) + x[i] sin(p f_i)
// and the backward dx = R^T dy (the rotation by -p f_i). x and y share one strided layout
// [batch, seq, heads, head_dim] with unit inner stride, so the q and k heads of the fused qkv
// buffer [B, T, (Hq + 2 Hkv) * D] rotate in one launch (heads = Hq + Hkv, seq_stride =
// (Hq + 2 Hkv) * D), in place (y == x) or not. positions [batch * seq] i32 (restarting at
// document boundaries); inv_freq [head_dim / 2] f64 on the device, from ops::rope_inv_freq
// (theta and llama3 scaling are applied there, once per model). Angles and their cos/sin are
// computed in f64 and rounded to f32, as the CPU op does; the rotation runs in fp32 and bf16
// outputs are rounded once.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

struct RopeLayout {
  std::int64_t batch = 0, seq = 0, heads = 0, head_dim = 0;
  std::int64_t batch_stride = 0, seq_stride = 0, head_stride = 0;  // in elements
};

void rope_forward(float* y, const float* x, const RopeLayout& layout, const std::int32_t* positions,
                  const double* inv_freq, cudaStream_t stream);
void rope_forward(__nv_bfloat16* y, const __nv_bfloat16* x, const RopeLayout& layout, const std::int32_t* positions,
                  const double* inv_freq, cudaStream_t stream);
void rope_backward(float* dx, const float* dy, const RopeLayout& layout, const std::int32_t* positions,
                   const double* inv_freq, cudaStream_t stream);
void rope_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const RopeLayout& layout,
                   const std::int32_t* positions, const double* inv_freq, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
