#include "kernels/cpu/gelu.hpp"

#include <numbers>

#include "kernels/cpu/fast_math.hpp"

namespace kiln::cpu {

namespace {

template <class T>
constexpr T kSqrt2OverPi = static_cast<T>(std::numbers::sqrt2* std::numbers::inv_sqrtpi);
template <class T>
constexpr T kCubic = static_cast<T>(0.044715);

// 0.5 (1 + tanh(u)) = sigmoid(2u): GELU is x sigmoid(2u), evaluated with the vectorisable
// sigmoid. The identity is exact, so the double path (std::exp) stays the reference.
// Always inlined: a call from the AVX-512/AVX2 row clones into a baseline function would not
// inline by itself (their arch differs) and each element would pay a scalar call.
template <class T>
[[gnu::always_inline]] inline T inner(T x) {
  return kSqrt2OverPi<T> * (x + kCubic<T> * x * x * x);
}

template <class T>
[[gnu::always_inline]] inline T gelu(T x) {
  return x * sigmoid_of(T(2) * inner(x));
}

// d gelu / dx = s + 2 x s (1 - s) u',  s = sigmoid(2u),  u' = k (1 + 3 * 0.044715 x^2)
template <class T>
[[gnu::always_inline]] inline T gelu_derivative(T x) {
  const T s = sigmoid_of(T(2) * inner(x));
  const T inner_derivative = kSqrt2OverPi<T> * (T(1) + T(3) * kCubic<T> * x * x);
  return s + T(2) * x * s * (T(1) - s) * inner_derivative;
}

// One row each; compiled for AVX-512 and AVX2 too (KILN_SIMD_CLONES), where the vectorised
// sigmoid runs 16 or 8 lanes wide instead of SSE's 4.
template <class T>
KILN_SIMD_CLONES void gelu_row(T* y, const T* x, std::int64_t n) {
#pragma omp simd
  for (std::int64_t c = 0; c < n; ++c) y[c] = gelu(x[c]);
}

template <class T>
KILN_SIMD_CLONES void gelu_backward_row(T* dx, const T* dy, const T* x, std::int64_t n, bool accumulate_dx) {
  if (accumulate_dx) {
#pragma omp simd
    for (std::int64_t c = 0; c < n; ++c) dx[c] += dy[c] * gelu_derivative(x[c]);
  } else {
#pragma omp simd
    for (std::int64_t c = 0; c < n; ++c) dx[c] = dy[c] * gelu_derivative(x[c]);
  }
}

}  // namespace

template <class T>
void gelu_forward(RowView<T> y, RowView<const T> x) {
#pragma omp parallel for if (parallel_worth(x.rows * x.cols)) schedule(static)
  for (std::int64_t i = 0; i < x.rows; ++i) gelu_row(y.row(i), x.row(i), x.cols);
}

template <class T>
void gelu_backward(RowView<T> dx, RowView<const T> dy, RowView<const T> x, bool accumulate_dx) {
#pragma omp parallel for if (parallel_worth(x.rows * x.cols)) schedule(static)
  for (std::int64_t i = 0; i < x.rows; ++i) gelu_backward_row(dx.row(i), dy.row(i), x.row(i), x.cols, accumulate_dx);
}

template void gelu_forward<float>(RowView<float>, RowView<const float>);
template void gelu_forward<double>(RowView<double>, RowView<const double>);
template void gelu_backward<float>(RowView<float>, RowView<const float>, RowView<const float>,
                                   bool);
template void gelu_backward<double>(RowView<double>, RowView<const double>, RowView<const double>,
                                    bool);

}  // namespace kiln::cpu
