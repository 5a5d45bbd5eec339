#pragma once
// kiln::ops — AdamW and the gradient-norm reduction.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// One AdamW step, as torch.optim.AdamW (decoupled weight decay):
//   g = grad * grad_scale                     (grad_scale folds in clipping / averaging)
//   p -= lr * weight_decay * p                (only when apply_weight_decay)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
struct AdamWStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
  std::int64_t step = 1;  // t, 1-based, for bias correction
  double grad_scale = 1.0;
};
// param, grad, m, v: same shape and dtype (F32 or F64), contiguous. grad is not modified.
void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWStep& step,
                bool apply_weight_decay);

// Sum of x^2 over all elements, accumulated in double (global grad-norm for clipping: sum
// over every parameter once, then sqrt).
double sum_of_squares(Tensor x);

}  // namespace kiln::ops
