#pragma once
// kiln::ops — Linear layers and general matmul (OpenBLAS sgemm/dgemm on the CPU, cuBLASLt
// through kernels/cuda/gemm.hpp on the CUDA device).
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// Linear layer, weight in PyTorch layout [out, in]:
//   x [..., in], w [out, in], b [out] or undefined  ->  y [..., out]
//   y = x W^T + b
void linear_forward(Tensor y, Tensor x, Tensor w, Tensor b = {});
// dy [..., out], x [..., in], w [out, in]  ->
//   dx [..., in]  = dy W          (overwritten, or added with Accumulate::Yes; may be undefined)
//   dw [out, in] += dy^T x        (may be undefined)
//   db [out]     += sum_rows dy   (may be undefined)
void linear_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                     Accumulate accumulate_dx = Accumulate::No);

// General 2-D matmul: c [M, N] = alpha * op(a) op(b) + beta * c, where op(a) is a or a^T
// ([M, K] after op), op(b) is b or b^T ([K, N] after op). beta = 0 ignores c's contents.
void matmul(Tensor c, Tensor a, Tensor b, bool transpose_a = false, bool transpose_b = false,
            double alpha = 1.0, double beta = 0.0);

}  // namespace kiln::ops
