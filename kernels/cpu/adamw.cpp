#include "kernels/cpu/adamw.hpp"

#include <cmath>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void adamw_step(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWScalars& s) {
  const T decay = static_cast<T>(1.0 - s.lr * s.weight_decay);
  const T beta1 = static_cast<T>(s.beta1), beta2 = static_cast<T>(s.beta2);
  const T one_minus_beta1 = static_cast<T>(1.0 - s.beta1);
  const T one_minus_beta2 = static_cast<T>(1.0 - s.beta2);
  const T step_size = static_cast<T>(s.step_size), eps = static_cast<T>(s.eps);
  const T inv_sqrt_bias2 = static_cast<T>(1.0 / s.sqrt_bias2);
  const T grad_scale = static_cast<T>(s.grad_scale);
#pragma omp parallel for simd if (parallel_worth(n)) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T grad = g[i] * grad_scale;
    const T m_i = beta1 * m[i] + one_minus_beta1 * grad;
    const T v_i = beta2 * v[i] + one_minus_beta2 * grad * grad;
    m[i] = m_i;
    v[i] = v_i;
    p[i] = p[i] * decay - step_size * m_i / (std::sqrt(v_i) * inv_sqrt_bias2 + eps);
  }
}

template void adamw_step<float>(float*, const float*, float*, float*, std::int64_t,
                                const AdamWScalars&);
template void adamw_step<double>(double*, const double*, double*, double*, std::int64_t,
                                 const AdamWScalars&);

}  // namespace kiln::cpu
