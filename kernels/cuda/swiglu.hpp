#pragma once
// SwiGLU (Llama's MLP) on the device, on the fused layout of the gate|up GEMM output:
//   gate_up [rows, 2F]: gate = columns [0, F), up = columns [F, 2F)  (ops: narrow(-1, 0, F) and
//   narrow(-1, F, F) of one buffer);  out, dout [rows, F];  dgate_up [rows, 2F]
//   out = silu(gate) * up,  silu(g) = g sigmoid(g)
//   dgate = dout * up * s (1 + g (1 - s)),  dup = dout * silu(g),  s = sigmoid(g)  (overwritten)
// f32, or bf16 storage (fp32 math, one rounding per stored value).
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

void swiglu_forward(float* out, const float* gate_up, std::int64_t rows, std::int64_t hidden, cudaStream_t stream);
void swiglu_forward(__nv_bfloat16* out, const __nv_bfloat16* gate_up, std::int64_t rows, std::int64_t hidden,
                    cudaStream_t stream);
void swiglu_backward(float* dgate_up, const float* dout, const float* gate_up, std::int64_t rows,
                     std::int64_t hidden, cudaStream_t stream);
void swiglu_backward(__nv_bfloat16* dgate_up, const __nv_bfloat16* dout, const __nv_bfloat16* gate_up,
                     std::int64_t rows, std::int64_t hidden, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
