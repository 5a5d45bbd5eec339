#pragma once
// Element-wise kernels over flat contiguous arrays [n] (residual adds, scaling, norms).
#include <cstdint>

namespace kiln::cpu {

template <class T>
void add(T* out, const T* a, const T* b, std::int64_t n);  // out = a + b (may alias)
template <class T>
void axpy(T* y, T alpha, const T* x, std::int64_t n);  // y += alpha x
template <class T>
void scale(T* x, T factor, std::int64_t n);  // x *= factor
template <class T>
void fill(T* x, T value, std::int64_t n);
// Sum of squares accumulated in double, in fixed blocks summed in order (deterministic).
template <class T>
double sum_of_squares(const T* x, std::int64_t n);
template <class T>
bool all_finite(const T* x, std::int64_t n);

}  // namespace kiln::cpu
