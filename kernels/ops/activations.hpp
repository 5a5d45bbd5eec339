#pragma once
// kiln::ops — GELU-tanh (GPT-2) and SwiGLU (Llama), forward and backward.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// GELU, tanh approximation exactly as torch.nn.functional.gelu(x, approximate='tanh'):
//   y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// x [..., C] -> y [..., C]; y may be x (in place).
void gelu_forward(Tensor y, Tensor x);
// dy, x [..., C] -> dx [..., C]; dx may be dy when overwriting.
void gelu_backward(Tensor dx, Tensor dy, Tensor x, Accumulate accumulate_dx = Accumulate::No);

// SwiGLU: out = silu(gate) * up, silu(g) = g * sigmoid(g).
// gate [..., F], up [..., F] -> out [..., F]. gate and up may be the two column halves of one
// fused [N, 2F] GEMM output (use Tensor::narrow on the last dim).
void swiglu_forward(Tensor out, Tensor gate, Tensor up);
// dout [..., F] -> dgate, dup [..., F] (overwritten; may be the halves of one [N, 2F] buffer)
void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up);

}  // namespace kiln::ops
