#include "kernels/cpu/rmsnorm.hpp"

#include <algorithm>
#include <cmath>

namespace kiln::cpu {

template <class T>
void rmsnorm_forward(RowView<T> y, T* rstd, RowView<const T> x, const T* w, double eps) {
  const std::int64_t C = x.cols;
#pragma omp parallel for if (parallel_worth(x.rows * x.cols)) schedule(static)
  for (std::int64_t i = 0; i < x.rows; ++i) {
    const T* xi = x.row(i);
    T squares = 0;
#pragma omp simd reduction(+ : squares)
    for (std::int64_t c = 0; c < C; ++c) squares += xi[c] * xi[c];
    const T s = T(1) / std::sqrt(squares / static_cast<T>(C) + static_cast<T>(eps));
    T* yi = y.row(i);
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) yi[c] = xi[c] * s * w[c];
    rstd[i] = s;
  }
}

// With xhat = x * rstd and g = dy * w:  dx = rstd * (g - xhat * mean_c(g * xhat)).
template <class T>
static void rmsnorm_input_grad(RowView<T> dx, RowView<const T> dy, RowView<const T> x, const T* w,
                               const T* rstd, bool accumulate) {
  const std::int64_t C = x.cols;
#pragma omp parallel for if (parallel_worth(x.rows * x.cols)) schedule(static)
  for (std::int64_t i = 0; i < x.rows; ++i) {
    const T* xi = x.row(i);
    const T* dyi = dy.row(i);
    const T s = rstd[i];
    T g_xhat_sum = 0;
#pragma omp simd reduction(+ : g_xhat_sum)
    for (std::int64_t c = 0; c < C; ++c) g_xhat_sum += dyi[c] * w[c] * xi[c] * s;
    const T g_xhat_mean = g_xhat_sum / static_cast<T>(C);
    T* dxi = dx.row(i);
    if (accumulate) {
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c) dxi[c] += s * (dyi[c] * w[c] - xi[c] * s * g_xhat_mean);
    } else {
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c) dxi[c] = s * (dyi[c] * w[c] - xi[c] * s * g_xhat_mean);
    }
  }
}

// dw += sum_rows dy * xhat: parallel over column blocks, rows in order (deterministic).
template <class T>
static void rmsnorm_weight_grad(T* dw, RowView<const T> dy, RowView<const T> x, const T* rstd) {
  constexpr std::int64_t kBlock = 64;
  const std::int64_t n_blocks = (x.cols + kBlock - 1) / kBlock;
#pragma omp parallel for if (parallel_worth(x.rows * x.cols)) schedule(static)
  for (std::int64_t block = 0; block < n_blocks; ++block) {
    const std::int64_t begin = block * kBlock, end = std::min(x.cols, begin + kBlock);
    T part[kBlock] = {};
    for (std::int64_t i = 0; i < x.rows; ++i) {
      const T* xi = x.row(i);
      const T* dyi = dy.row(i);
      const T s = rstd[i];
#pragma omp simd
      for (std::int64_t c = begin; c < end; ++c) part[c - begin] += dyi[c] * xi[c] * s;
    }
    for (std::int64_t c = begin; c < end; ++c) dw[c] += part[c - begin];
  }
}

template <class T>
void rmsnorm_backward(RowView<T> dx, T* dw, RowView<const T> dy, RowView<const T> x, const T* w,
                      const T* rstd, bool accumulate_dx) {
  if (dx.defined()) rmsnorm_input_grad(dx, dy, x, w, rstd, accumulate_dx);
  if (dw) rmsnorm_weight_grad(dw, dy, x, rstd);
}

template void rmsnorm_forward<float>(RowView<float>, float*, RowView<const float>, const float*,
                                     double);
template void rmsnorm_forward<double>(RowView<double>, double*, RowView<const double>,
                                      const double*, double);
template void rmsnorm_backward<float>(RowView<float>, float*, RowView<const float>,
                                      RowView<const float>, const float*, const float*, bool);
template void rmsnorm_backward<double>(RowView<double>, double*, RowView<const double>,
                                       RowView<const double>, const double*, const double*, bool);

}  // namespace kiln::cpu
