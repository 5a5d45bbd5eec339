#pragma once
// GELU, tanh approximation (torch.nn.functional.gelu(x, approximate='tanh')):
//   y = 0.5 x (1 + tanh(k (x + 0.044715 x^3))),  k = sqrt(2 / pi)
//   forward:  x [N, C] -> y [N, C]          (y may alias x)
//   backward: dy, x [N, C] -> dx [N, C] (= or +=; dx may alias dy)
#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void gelu_forward(RowView<T> y, RowView<const T> x);

template <class T>
void gelu_backward(RowView<T> dx, RowView<const T> dy, RowView<const T> x, bool accumulate_dx);

}  // namespace kiln::cpu
