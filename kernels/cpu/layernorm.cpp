#include "kernels/cpu/layernorm.hpp"

#include <algorithm>
#include <cmath>

namespace kiln::cpu {

template <class T>
void layernorm_forward(RowView<T> y, T* mean, T* rstd, RowView<const T> x, const T* w, const T* b,
                       double eps) {
  const std::int64_t C = x.cols;
  const T inv_c = T(1) / static_cast<T>(C);
#pragma omp parallel for if (parallel_worth(x.rows * x.cols)) schedule(static)
  for (std::int64_t i = 0; i < x.rows; ++i) {
    const T* xi = x.row(i);
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t c = 0; c < C; ++c) sum += xi[c];
    const T m = sum * inv_c;
    // Two passes (mean, then squared deviations) avoid the cancellation of E[x^2] - m^2.
    T squares = 0;
#pragma omp simd reduction(+ : squares)
    for (std::int64_t c = 0; c < C; ++c) squares += (xi[c] - m) * (xi[c] - m);
    const T s = T(1) / std::sqrt(squares * inv_c + static_cast<T>(eps));
    T* yi = y.row(i);
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) yi[c] = (xi[c] - m) * s * w[c] + b[c];
    mean[i] = m;
    rstd[i] = s;
  }
}

// With xhat = (x - mean) * rstd and g = dy * w:
//   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),  dw += dy * xhat,  db += dy.
template <class T>
static void layernorm_input_grad(RowView<T> dx, RowView<const T> dy, RowView<const T> x, const T* w,
                                 const T* mean, const T* rstd, bool accumulate) {
  const std::int64_t C = x.cols;
  const T inv_c = T(1) / static_cast<T>(C);
#pragma omp parallel for if (parallel_worth(x.rows * x.cols)) schedule(static)
  for (std::int64_t i = 0; i < x.rows; ++i) {
    const T* xi = x.row(i);
    const T* dyi = dy.row(i);
    const T m = mean[i], s = rstd[i];
    T g_sum = 0, g_xhat_sum = 0;
#pragma omp simd reduction(+ : g_sum, g_xhat_sum)
    for (std::int64_t c = 0; c < C; ++c) {
      const T g = dyi[c] * w[c];
      g_sum += g;
      g_xhat_sum += g * (xi[c] - m) * s;
    }
    const T g_mean = g_sum * inv_c, g_xhat_mean = g_xhat_sum * inv_c;
    T* dxi = dx.row(i);
    // Two loops rather than `keep * dx`: an overwritten dx may hold garbage (NaN * 0 = NaN).
    if (accumulate) {
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c)
        dxi[c] += s * (dyi[c] * w[c] - g_mean - (xi[c] - m) * s * g_xhat_mean);
    } else {
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c)
        dxi[c] = s * (dyi[c] * w[c] - g_mean - (xi[c] - m) * s * g_xhat_mean);
    }
  }
}

// Parameter gradients: parallel over column blocks, rows in order (deterministic).
template <class T>
static void layernorm_param_grads(T* dw, T* db, RowView<const T> dy, RowView<const T> x,
                                  const T* mean, const T* rstd) {
  constexpr std::int64_t kBlock = 64;
  const std::int64_t n_blocks = (x.cols + kBlock - 1) / kBlock;
#pragma omp parallel for if (parallel_worth(x.rows * x.cols)) schedule(static)
  for (std::int64_t block = 0; block < n_blocks; ++block) {
    const std::int64_t begin = block * kBlock, end = std::min(x.cols, begin + kBlock);
    T dw_part[kBlock] = {}, db_part[kBlock] = {};
    for (std::int64_t i = 0; i < x.rows; ++i) {
      const T* xi = x.row(i);
      const T* dyi = dy.row(i);
      const T m = mean[i], s = rstd[i];
#pragma omp simd
      for (std::int64_t c = begin; c < end; ++c) {
        dw_part[c - begin] += dyi[c] * (xi[c] - m) * s;
        db_part[c - begin] += dyi[c];
      }
    }
    for (std::int64_t c = begin; c < end; ++c) {
      if (dw) dw[c] += dw_part[c - begin];
      if (db) db[c] += db_part[c - begin];
    }
  }
}

template <class T>
void layernorm_backward(RowView<T> dx, T* dw, T* db, RowView<const T> dy, RowView<const T> x,
                        const T* w, const T* mean, const T* rstd, bool accumulate_dx) {
  if (dx.defined()) layernorm_input_grad(dx, dy, x, w, mean, rstd, accumulate_dx);
  if (dw || db) layernorm_param_grads(dw, db, dy, x, mean, rstd);
}

template void layernorm_forward<float>(RowView<float>, float*, float*, RowView<const float>,
                                       const float*, const float*, double);
template void layernorm_forward<double>(RowView<double>, double*, double*, RowView<const double>,
                                        const double*, const double*, double);
template void layernorm_backward<float>(RowView<float>, float*, float*, RowView<const float>,
                                        RowView<const float>, const float*, const float*,
                                        const float*, bool);
template void layernorm_backward<double>(RowView<double>, double*, double*, RowView<const double>,
                                         RowView<const double>, const double*, const double*,
                                         const double*, bool);

}  // namespace kiln::cpu
