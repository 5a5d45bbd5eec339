#pragma once
// AdamW (torch.optim.AdamW semantics) over flat arrays p, g, m, v [n].
//   g' = g * grad_scale
//   p *= 1 - lr * weight_decay                       (decoupled; weight_decay 0 = off)
//   m = beta1 m + (1 - beta1) g';  v = beta2 v + (1 - beta2) g'^2
//   p -= step_size * m / (sqrt(v) / sqrt_bias2 + eps)
// with step_size = lr / (1 - beta1^t) and sqrt_bias2 = sqrt(1 - beta2^t) precomputed.
#include <cstdint>

namespace kiln::cpu {

struct AdamWScalars {
  double lr, beta1, beta2, eps, weight_decay, step_size, sqrt_bias2, grad_scale;
};

template <class T>
void adamw_step(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWScalars& s);

}  // namespace kiln::cpu
