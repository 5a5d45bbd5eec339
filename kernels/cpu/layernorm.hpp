#pragma once
// LayerNorm over the last dim, PyTorch semantics (biased variance).
//   forward:  x [N, C], w [C], b [C] -> y [N, C], mean [N], rstd [N]
//   backward: dy [N, C] -> dx [N, C] (= or +=), dw [C] +=, db [C] += (either may be null)
#include <cstdint>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void layernorm_forward(RowView<T> y, T* mean, T* rstd, RowView<const T> x, const T* w, const T* b,
                       double eps);

template <class T>
void layernorm_backward(RowView<T> dx, T* dw, T* db, RowView<const T> dy, RowView<const T> x,
                        const T* w, const T* mean, const T* rstd, bool accumulate_dx);

}  // namespace kiln::cpu
