#include "kernels/cpu/matmul.hpp"

#include <cblas.h>

#include <algorithm>
#include <type_traits>

namespace kiln::cpu {

namespace {

blasint to_blas(std::int64_t value) { return static_cast<blasint>(value); }
CBLAS_TRANSPOSE to_blas(bool transpose) { return transpose ? CblasTrans : CblasNoTrans; }

}  // namespace

template <class T>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, to_blas(transpose_a), to_blas(transpose_b), to_blas(m), to_blas(n),
                to_blas(k), alpha, a, to_blas(lda), b, to_blas(ldb), beta, c, to_blas(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, to_blas(transpose_a), to_blas(transpose_b), to_blas(m), to_blas(n),
                to_blas(k), alpha, a, to_blas(lda), b, to_blas(ldb), beta, c, to_blas(ldc));
  }
}

// y [N, out] = x [N, in] · w[out, in]^T (+ b): the bias is written first so that one GEMM
// with beta = 1 adds the product onto it.
template <class T>
void linear_forward(RowView<T> y, RowView<const T> x, const T* w, const T* b) {
  const std::int64_t n_rows = x.rows, in = x.cols, out = y.cols;
  if (b != nullptr) {
#pragma omp parallel for if (parallel_worth(n_rows * out)) schedule(static)
    for (std::int64_t i = 0; i < n_rows; ++i) std::copy(b, b + out, y.row(i));
  }
  gemm<T>(false, true, n_rows, out, in, T(1), x.data, x.stride, w, in, b ? T(1) : T(0), y.data,
          y.stride);
}

template <class T>
void linear_backward(RowView<T> dx, T* dw, T* db, RowView<const T> dy, RowView<const T> x,
                     const T* w, bool accumulate_dx) {
  const std::int64_t n_rows = dy.rows, out = dy.cols, in = x.cols;
  // dx [N, in] = dy [N, out] · w [out, in]
  if (dx.defined())
    gemm<T>(false, false, n_rows, in, out, T(1), dy.data, dy.stride, w, in,
            accumulate_dx ? T(1) : T(0), dx.data, dx.stride);
  // dw [out, in] += dy^T [out, N] · x [N, in]
  if (dw != nullptr)
    gemm<T>(true, false, out, in, n_rows, T(1), dy.data, dy.stride, x.data, x.stride, T(1), dw, in);
  if (db != nullptr) add_column_sums(db, dy);
}

template <class T>
void add_column_sums(T* sums, RowView<const T> rows) {
  // 64 columns per block: a cache line or four per row, and enough blocks to share out.
  constexpr std::int64_t kBlock = 64;
  const std::int64_t n_blocks = (rows.cols + kBlock - 1) / kBlock;
#pragma omp parallel for if (parallel_worth(rows.rows * rows.cols)) schedule(static)
  for (std::int64_t block = 0; block < n_blocks; ++block) {
    const std::int64_t begin = block * kBlock, end = std::min(rows.cols, begin + kBlock);
    T partial[kBlock] = {};
    for (std::int64_t i = 0; i < rows.rows; ++i) {
      const T* row = rows.row(i);
#pragma omp simd
      for (std::int64_t j = begin; j < end; ++j) partial[j - begin] += row[j];
    }
    for (std::int64_t j = begin; j < end; ++j) sums[j] += partial[j - begin];
  }
}

#define KILN_INSTANTIATE(T)                                                                \
  template void gemm<T>(bool, bool, std::int64_t, std::int64_t, std::int64_t, T, const T*, \
                        std::int64_t, const T*, std::int64_t, T, T*, std::int64_t);        \
  template void linear_forward<T>(RowView<T>, RowView<const T>, const T*, const T*);       \
  template void linear_backward<T>(RowView<T>, T*, T*, RowView<const T>, RowView<const T>, \
                                   const T*, bool);                                        \
  template void add_column_sums<T>(T*, RowView<const T>);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
