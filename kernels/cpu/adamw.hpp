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

// The same step on fp32 masters, also writing each updated weight rounded to bf16 into
// `working_copy` [n] in the same pass (mixed precision: the model reads the bf16 copy).
void adamw_step_with_bf16_copy(float* p, const float* g, float* m, float* v, std::uint16_t* working_copy,
                               std::int64_t n, const AdamWScalars& s);

}  // namespace kiln::cpu
