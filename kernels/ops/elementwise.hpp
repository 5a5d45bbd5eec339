#pragma once
// kiln::ops — Residual adds, scaling, dtype-converting copy, fills, finite checks.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// out = a + b (residual forward; the backward passes the gradient to both branches, see add_to).
// All the same shape; out may alias a or b.
void add(Tensor out, Tensor a, Tensor b);
// dst += src (residual backward, gradient accumulation).
void add_to(Tensor dst, Tensor src);
// y += alpha * x.
void axpy(Tensor y, double alpha, Tensor x);
// x *= factor, in place.
void scale(Tensor x, double factor);
// dst = src. Same shape; converts between F32, F64, BF16 and F16 (round to nearest even),
// copies any other dtype verbatim when both match. Either side may be strided.
void copy(Tensor dst, Tensor src);
// x = 0 / x = value (floating dtypes for fill; zero works for any dtype).
void zero(Tensor x);
void fill(Tensor x, double value);
// flag [1] f64 = 1 when any element of x is NaN or +-inf, else 0 (guards the optimizer step,
// §1). A tensor, not a bool, so the check needs no read-back of its own: a MAX all-reduce of
// the flags tells every rank, and the step reads it once.
void nonfinite_flag(Tensor flag, Tensor x);

}  // namespace kiln::ops
