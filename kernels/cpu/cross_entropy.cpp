#include "kernels/cpu/cross_entropy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/fast_math.hpp"

namespace kiln::cpu {

namespace {

// The per-row helpers carry the SIMD clones: the row loops around them are OpenMP regions.
// Sixteen independent running maxima: a single `omp simd reduction(max)` chain measured 4x
// slower (one dependent max per vector). NaN is not propagated here; sum_exp_minus does that.
template <class T>
KILN_SIMD_CLONES T max_of(const T* row, std::int64_t n) {
  constexpr std::int64_t kLanes = 16;
  T lanes[kLanes];
  std::fill(lanes, lanes + kLanes, -std::numeric_limits<T>::infinity());
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
#pragma omp simd
    for (std::int64_t l = 0; l < kLanes; ++l)
      lanes[l] = row[j + l] > lanes[l] ? row[j + l] : lanes[l];
  }
  T best = -std::numeric_limits<T>::infinity();
  for (std::int64_t l = 0; l < kLanes; ++l) best = lanes[l] > best ? lanes[l] : best;
  for (; j < n; ++j) best = row[j] > best ? row[j] : best;
  return best;
}

template <class T>
KILN_SIMD_CLONES T sum_exp_minus(const T* row, std::int64_t n, T shift) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t j = 0; j < n; ++j) sum += exp_of(row[j] - shift);
  return sum;
}

// out[j] = exp(row[j] - lse) * scale over the valid columns; out may alias row.
template <class T>
KILN_SIMD_CLONES void scaled_probabilities(T* out, const T* row, std::int64_t n, T lse, T scale) {
#pragma omp simd
  for (std::int64_t j = 0; j < n; ++j) out[j] = exp_of(row[j] - lse) * scale;
}

}  // namespace

template <class T>
void cross_entropy_forward(T* losses, T* lse, RowView<const T> logits, const std::int64_t* targets,
                           const std::uint8_t* mask, std::int64_t valid) {
#pragma omp parallel for if (parallel_worth(logits.rows * logits.cols)) schedule(static)
  for (std::int64_t i = 0; i < logits.rows; ++i) {
    if (mask && mask[i] == 0) {
      losses[i] = 0;
      lse[i] = 0;
      continue;
    }
    const T* row = logits.row(i);
    const T shift = max_of(row, valid);
    const T log_sum_exp = shift + std::log(sum_exp_minus(row, valid, shift));
    lse[i] = log_sum_exp;
    losses[i] = log_sum_exp - row[targets[i]];
  }
}

template <class T>
void cross_entropy_backward(RowView<T> dlogits, RowView<const T> logits,
                            const std::int64_t* targets, const T* lse, const std::uint8_t* mask,
                            std::int64_t valid, std::int64_t first_id, double scale) {
  const T row_scale = static_cast<T>(scale);
#pragma omp parallel for if (parallel_worth(logits.rows * logits.cols)) schedule(static)
  for (std::int64_t i = 0; i < logits.rows; ++i) {
    T* out = dlogits.row(i);
    if (mask && mask[i] == 0) {
      std::fill(out, out + dlogits.cols, T(0));
      continue;
    }
    const T* row = logits.row(i);
    const T row_lse = lse[i];
    scaled_probabilities(out, row, valid, row_lse, row_scale);
    std::fill(out + valid, out + dlogits.cols, T(0));
    const std::int64_t target = targets[i] - first_id;
    if (target >= 0 && target < valid) out[target] -= row_scale;
  }
}

template <class T>
void row_max(T* out, RowView<const T> logits, std::int64_t valid) {
#pragma omp parallel for if (parallel_worth(logits.rows * logits.cols)) schedule(static)
  for (std::int64_t i = 0; i < logits.rows; ++i) out[i] = max_of(logits.row(i), valid);
}

template <class T>
void row_sum_exp_and_target(T* sum_exp, T* target_logit, RowView<const T> logits,
                            const std::int64_t* targets, const T* row_max_values,
                            std::int64_t valid, std::int64_t first_id) {
#pragma omp parallel for if (parallel_worth(logits.rows * logits.cols)) schedule(static)
  for (std::int64_t i = 0; i < logits.rows; ++i) {
    const T* row = logits.row(i);
    sum_exp[i] = sum_exp_minus(row, valid, row_max_values[i]);
    const std::int64_t target = targets[i] - first_id;
    target_logit[i] = target >= 0 && target < valid ? row[target] : T(0);
  }
}

template <class T>
void softmax_rows(RowView<T> probs, RowView<const T> logits, std::int64_t valid,
                  double temperature) {
  const T inv_temperature = static_cast<T>(1.0 / temperature);
#pragma omp parallel for if (parallel_worth(logits.rows * logits.cols)) schedule(static)
  for (std::int64_t i = 0; i < logits.rows; ++i) {
    const T* row = logits.row(i);
    T* out = probs.row(i);
    // softmax(z / temp) = exp(z / temp - lse(z / temp)); lse from max and sum of exps.
    const T shift = max_of(row, valid) * inv_temperature;
    T sum = 0;
    for (std::int64_t j = 0; j < valid; ++j) sum += exp_of(row[j] * inv_temperature - shift);
    for (std::int64_t j = 0; j < valid; ++j)
      out[j] = exp_of(row[j] * inv_temperature - shift) / sum;
    std::fill(out + valid, out + probs.cols, T(0));
  }
}

#define KILN_INSTANTIATE(T)                                                                        \
  template void cross_entropy_forward<T>(T*, T*, RowView<const T>, const std::int64_t*,            \
                                         const std::uint8_t*, std::int64_t);                       \
  template void cross_entropy_backward<T>(RowView<T>, RowView<const T>, const std::int64_t*,       \
                                          const T*, const std::uint8_t*, std::int64_t,             \
                                          std::int64_t, double);                                   \
  template void row_max<T>(T*, RowView<const T>, std::int64_t);                                    \
  template void row_sum_exp_and_target<T>(T*, T*, RowView<const T>, const std::int64_t*, const T*, \
                                          std::int64_t, std::int64_t);                             \
  template void softmax_rows<T>(RowView<T>, RowView<const T>, std::int64_t, double);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
