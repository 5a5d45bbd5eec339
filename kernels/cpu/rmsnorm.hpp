#pragma once
// RMSNorm over the last dim (Llama): y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps).
//   forward:  x [N, C], w [C] -> y [N, C], rstd [N]
//   backward: dy [N, C] -> dx [N, C] (= or +=), dw [C] += (may be null)
#include <cstdint>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void rmsnorm_forward(RowView<T> y, T* rstd, RowView<const T> x, const T* w, double eps);

template <class T>
void rmsnorm_backward(RowView<T> dx, T* dw, RowView<const T> dy, RowView<const T> x, const T* w,
                      const T* rstd, bool accumulate_dx);

}  // namespace kiln::cpu
