#include "kernels/cpu/swiglu.hpp"

#include "kernels/cpu/fast_math.hpp"

namespace kiln::cpu {

template <class T>
void swiglu_forward(RowView<T> out, RowView<const T> gate, RowView<const T> up) {
#pragma omp parallel for if (parallel_worth(gate.rows * gate.cols)) schedule(static)
  for (std::int64_t i = 0; i < gate.rows; ++i) {
    const T* g = gate.row(i);
    const T* u = up.row(i);
    T* o = out.row(i);
#pragma omp simd
    for (std::int64_t c = 0; c < gate.cols; ++c) o[c] = g[c] * sigmoid_of(g[c]) * u[c];
  }
}

template <class T>
void swiglu_backward(RowView<T> dgate, RowView<T> dup, RowView<const T> dout, RowView<const T> gate,
                     RowView<const T> up) {
#pragma omp parallel for if (parallel_worth(gate.rows * gate.cols)) schedule(static)
  for (std::int64_t i = 0; i < gate.rows; ++i) {
    const T* g = gate.row(i);
    const T* u = up.row(i);
    const T* d = dout.row(i);
    T* dg = dgate.row(i);
    T* du = dup.row(i);
#pragma omp simd
    for (std::int64_t c = 0; c < gate.cols; ++c) {
      const T s = sigmoid_of(g[c]);
      const T silu = g[c] * s;
      // Read everything before writing: dgate/dup may alias dout in a fused buffer.
      const T dout_c = d[c], up_c = u[c];
      dg[c] = dout_c * up_c * s * (T(1) + g[c] * (T(1) - s));
      du[c] = dout_c * silu;
    }
  }
}

template void swiglu_forward<float>(RowView<float>, RowView<const float>, RowView<const float>);
template void swiglu_forward<double>(RowView<double>, RowView<const double>, RowView<const double>);
template void swiglu_backward<float>(RowView<float>, RowView<float>, RowView<const float>,
                                     RowView<const float>, RowView<const float>);
template void swiglu_backward<double>(RowView<double>, RowView<double>, RowView<const double>,
                                      RowView<const double>, RowView<const double>);

}  // namespace kiln::cpu
