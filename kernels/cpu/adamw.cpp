#include "kernels/cpu/adamw.hpp"

#include <cmath>

#include "kernels/cpu/bf16.hpp"
#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

namespace {

// The step's constants in T, and the update of one element.
template <class T>
struct AdamWMath {
  explicit AdamWMath(const AdamWScalars& s)
      : decay(static_cast<T>(1.0 - s.lr * s.weight_decay)),
        beta1(static_cast<T>(s.beta1)),
        beta2(static_cast<T>(s.beta2)),
        one_minus_beta1(static_cast<T>(1.0 - s.beta1)),
        one_minus_beta2(static_cast<T>(1.0 - s.beta2)),
        step_size(static_cast<T>(s.step_size)),
        eps(static_cast<T>(s.eps)),
        inv_sqrt_bias2(static_cast<T>(1.0 / s.sqrt_bias2)),
        grad_scale(static_cast<T>(s.grad_scale)) {}

  // Updates m and v in place and returns the new weight.
  T update(T p, T g, T& m, T& v) const {
    const T grad = g * grad_scale;
    const T m_i = beta1 * m + one_minus_beta1 * grad;
    const T v_i = beta2 * v + one_minus_beta2 * grad * grad;
    m = m_i;
    v = v_i;
    return p * decay - step_size * m_i / (std::sqrt(v_i) * inv_sqrt_bias2 + eps);
  }

  T decay, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, eps, inv_sqrt_bias2, grad_scale;
};

}  // namespace

template <class T>
void adamw_step(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamWScalars& s) {
  const AdamWMath<T> math(s);
#pragma omp parallel for simd if (parallel_worth(n)) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) p[i] = math.update(p[i], g[i], m[i], v[i]);
}

void adamw_step_with_bf16_copy(float* p, const float* g, float* m, float* v, std::uint16_t* working_copy,
                               std::int64_t n, const AdamWScalars& s) {
  const AdamWMath<float> math(s);
#pragma omp parallel for simd if (parallel_worth(n)) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    p[i] = math.update(p[i], g[i], m[i], v[i]);
    working_copy[i] = float_to_bf16_bits(p[i]);
  }
}

template void adamw_step<float>(float*, const float*, float*, float*, std::int64_t,
                                const AdamWScalars&);
template void adamw_step<double>(double*, const double*, double*, double*, std::int64_t,
                                 const AdamWScalars&);

}  // namespace kiln::cpu
