#pragma once
// GEMM and the linear layer on OpenBLAS (cblas_sgemm / cblas_dgemm). Called from serial code
// only: OpenBLAS runs its own threads.
#include <cstdint>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

// Row-major C[M, N] = alpha * op(A) op(B) + beta * C with leading dimensions (row strides).
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc);

// x [N, in], w [out, in] (contiguous), b [out] or null -> y [N, out]
template <class T>
void linear_forward(RowView<T> y, RowView<const T> x, const T* w, const T* b);

// dy [N, out], x [N, in], w [out, in] -> dx [N, in] (= or +=; skipped when undefined),
// dw [out, in] += dy^T x (skipped when null), db [out] += column sums of dy (when non-null)
template <class T>
void linear_backward(RowView<T> dx, T* dw, T* db, RowView<const T> dy, RowView<const T> x,
                     const T* w, bool accumulate_dx);

// sums [C] += column sums of rows [N, C], parallel over column blocks so that every sum is
// taken in row order by one thread (deterministic whatever the thread count).
template <class T>
void add_column_sums(T* sums, RowView<const T> rows);

}  // namespace kiln::cpu
