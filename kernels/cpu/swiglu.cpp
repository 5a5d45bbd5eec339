#include "kernels/cpu/swiglu.hpp"

#include "kernels/cpu/fast_math.hpp"

namespace kiln::cpu {

namespace {

// One row each, compiled for AVX-512 and AVX2 too (KILN_SIMD_CLONES).
template <class T>
KILN_SIMD_CLONES void swiglu_row(T* o, const T* g, const T* u, std::int64_t n) {
#pragma omp simd
  for (std::int64_t c = 0; c < n; ++c) o[c] = g[c] * sigmoid_of(g[c]) * u[c];
}

template <class T>
KILN_SIMD_CLONES void swiglu_backward_row(T* dg, T* du, const T* d, const T* g, const T* u, std::int64_t n) {
#pragma omp simd
  for (std::int64_t c = 0; c < n; ++c) {
    const T s = sigmoid_of(g[c]);
    const T silu = g[c] * s;
    // Read everything before writing: dgate/dup may alias dout in a fused buffer.
    const T dout_c = d[c], up_c = u[c];
    dg[c] = dout_c * up_c * s * (T(1) + g[c] * (T(1) - s));
    du[c] = dout_c * silu;
  }
}

}  // namespace

template <class T>
void swiglu_forward(RowView<T> out, RowView<const T> gate, RowView<const T> up) {
#pragma omp parallel for if (parallel_worth(gate.rows * gate.cols)) schedule(static)
  for (std::int64_t i = 0; i < gate.rows; ++i) swiglu_row(out.row(i), gate.row(i), up.row(i), gate.cols);
}

template <class T>
void swiglu_backward(RowView<T> dgate, RowView<T> dup, RowView<const T> dout, RowView<const T> gate,
                     RowView<const T> up) {
#pragma omp parallel for if (parallel_worth(gate.rows * gate.cols)) schedule(static)
  for (std::int64_t i = 0; i < gate.rows; ++i)
    swiglu_backward_row(dgate.row(i), dup.row(i), dout.row(i), gate.row(i), up.row(i), gate.cols);
}

template void swiglu_forward<float>(RowView<float>, RowView<const float>, RowView<const float>);
template void swiglu_forward<double>(RowView<double>, RowView<const double>, RowView<const double>);
template void swiglu_backward<float>(RowView<float>, RowView<float>, RowView<const float>,
                                     RowView<const float>, RowView<const float>);
template void swiglu_backward<double>(RowView<double>, RowView<double>, RowView<const double>,
                                      RowView<const double>, RowView<const double>);

}  // namespace kiln::cpu
