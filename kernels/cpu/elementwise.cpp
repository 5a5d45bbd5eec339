#include "kernels/cpu/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void add(T* out, const T* a, const T* b, std::int64_t n) {
#pragma omp parallel for simd if (parallel_worth(n)) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T>
void axpy(T* y, T alpha, const T* x, std::int64_t n) {
#pragma omp parallel for simd if (parallel_worth(n)) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <class T>
void scale(T* x, T factor, std::int64_t n) {
#pragma omp parallel for simd if (parallel_worth(n)) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) x[i] *= factor;
}

template <class T>
void fill(T* x, T value, std::int64_t n) {
#pragma omp parallel for simd if (parallel_worth(n)) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) x[i] = value;
}

template <class T>
double sum_of_squares(const T* x, std::int64_t n) {
  // Fixed-size blocks, not per-thread partials, so the sum is the same for any thread count.
  constexpr std::int64_t kBlock = 1 << 14;
  const std::int64_t n_blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<std::size_t>(n_blocks));
#pragma omp parallel for if (parallel_worth(n)) schedule(static)
  for (std::int64_t block = 0; block < n_blocks; ++block) {
    const std::int64_t begin = block * kBlock, end = std::min(n, begin + kBlock);
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t i = begin; i < end; ++i) sum += static_cast<double>(x[i]) * x[i];
    partial[static_cast<std::size_t>(block)] = sum;
  }
  double total = 0;
  for (double part : partial) total += part;
  return total;
}

template <class T>
bool all_finite(const T* x, std::int64_t n) {
  // x - x is 0 for finite values and NaN for inf or NaN; summing keeps the loop branch-free.
  T probe = 0;
#pragma omp parallel for simd if (parallel_worth(n)) reduction(+ : probe) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) probe += x[i] - x[i];
  return probe == T(0);
}

#define KILN_INSTANTIATE(T)                                   \
  template void add<T>(T*, const T*, const T*, std::int64_t); \
  template void axpy<T>(T*, T, const T*, std::int64_t);       \
  template void scale<T>(T*, T, std::int64_t);                \
  template void fill<T>(T*, T, std::int64_t);                 \
  template double sum_of_squares<T>(const T*, std::int64_t);  \
  template bool all_finite<T>(const T*, std::int64_t);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
