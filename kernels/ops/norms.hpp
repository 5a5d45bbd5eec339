#pragma once
// kiln::ops — LayerNorm (GPT-2) and RMSNorm (Llama), forward and backward.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// LayerNorm over the last dim:
//   x [..., C], w [C], b [C]  ->  y [..., C], mean [N], rstd [N]  (saved for backward)
//   y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps)  (biased variance, as PyTorch)
void layernorm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b,
                       double eps = 1e-5);
// -> dx [..., C] (overwritten or accumulated), dw [C] +=, db [C] += (dw/db may be undefined)
void layernorm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Tensor mean,
                        Tensor rstd, Accumulate accumulate_dx = Accumulate::No);

// RMSNorm over the last dim (Llama):
//   x [..., C], w [C]  ->  y [..., C], rstd [N]  (saved)
//   y = x * rstd * w,  rstd = 1 / sqrt(mean(x^2) + eps)
void rmsnorm_forward(Tensor y, Tensor rstd, Tensor x, Tensor w, double eps = 1e-5);
// -> dx [..., C] (overwritten or accumulated), dw [C] += (may be undefined)
void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, Tensor rstd,
                      Accumulate accumulate_dx = Accumulate::No);

}  // namespace kiln::ops
