#pragma once
// SwiGLU (Llama MLP): out = silu(gate) * up, silu(g) = g * sigmoid(g).
//   forward:  gate, up [N, F] -> out [N, F]
//   backward: dout [N, F] -> dgate = dout * up * sigmoid(g) (1 + g (1 - sigmoid(g))),
//                            dup   = dout * silu(g)                    (both overwritten)
// gate/up (and dgate/dup) may be the two column halves of one fused [N, 2F] buffer.
#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void swiglu_forward(RowView<T> out, RowView<const T> gate, RowView<const T> up);

template <class T>
void swiglu_backward(RowView<T> dgate, RowView<T> dup, RowView<const T> dout, RowView<const T> gate,
                     RowView<const T> up);

}  // namespace kiln::cpu
