#include "kernels/cpu/bf16.hpp"

#include <algorithm>
#include <vector>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

namespace {

// The per-chunk loops are cloned for AVX-512 / AVX2 (KILN_SIMD_CLONES); the thread team
// splits a buffer into chunks outside them, since an OpenMP-outlined body is not cloned.
constexpr std::int64_t kChunk = 1 << 14;

KILN_SIMD_CLONES void widen_span(float* dst, const std::uint16_t* src, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_bits_to_float(src[i]);
}

KILN_SIMD_CLONES void narrow_span(std::uint16_t* dst, const float* src, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16_bits(src[i]);
}

KILN_SIMD_CLONES double sum_of_squares_span(const std::uint16_t* x, std::int64_t n) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t i = 0; i < n; ++i) {
    const double value = bf16_bits_to_float(x[i]);
    sum += value * value;
  }
  return sum;
}

KILN_SIMD_CLONES std::int64_t count_nonfinite_span(const std::uint16_t* x, std::int64_t n) {
  std::int64_t count = 0;
#pragma omp simd reduction(+ : count)
  for (std::int64_t i = 0; i < n; ++i) count += (x[i] & 0x7F80u) == 0x7F80u ? 1 : 0;
  return count;
}

KILN_SIMD_CLONES void add_span(std::uint16_t* out, const std::uint16_t* a, const std::uint16_t* b, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) out[i] = float_to_bf16_bits(bf16_bits_to_float(a[i]) + bf16_bits_to_float(b[i]));
}

KILN_SIMD_CLONES void axpy_span(std::uint16_t* y, float alpha, const std::uint16_t* x, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) y[i] = float_to_bf16_bits(bf16_bits_to_float(y[i]) + alpha * bf16_bits_to_float(x[i]));
}

KILN_SIMD_CLONES void scale_span(std::uint16_t* x, float factor, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) x[i] = float_to_bf16_bits(bf16_bits_to_float(x[i]) * factor);
}

std::int64_t chunks_of(std::int64_t n) { return (n + kChunk - 1) / kChunk; }

// Runs span(begin, length) over n elements in kChunk pieces, on the thread team when worth it.
template <class Span>
void chunked(std::int64_t n, Span&& span) {
#pragma omp parallel for if (parallel_worth(n)) schedule(static)
  for (std::int64_t chunk = 0; chunk < chunks_of(n); ++chunk) {
    const std::int64_t begin = chunk * kChunk;
    span(begin, std::min(kChunk, n - begin));
  }
}

}  // namespace

void add_bf16(std::uint16_t* out, const std::uint16_t* a, const std::uint16_t* b, std::int64_t n) {
  chunked(n, [&](std::int64_t at, std::int64_t length) { add_span(out + at, a + at, b + at, length); });
}

void axpy_bf16(std::uint16_t* y, float alpha, const std::uint16_t* x, std::int64_t n) {
  chunked(n, [&](std::int64_t at, std::int64_t length) { axpy_span(y + at, alpha, x + at, length); });
}

void scale_bf16(std::uint16_t* x, float factor, std::int64_t n) {
  chunked(n, [&](std::int64_t at, std::int64_t length) { scale_span(x + at, factor, length); });
}

void widen_bf16(float* dst, const std::uint16_t* src, std::int64_t n) {
  chunked(n, [&](std::int64_t at, std::int64_t length) { widen_span(dst + at, src + at, length); });
}

void narrow_to_bf16(std::uint16_t* dst, const float* src, std::int64_t n) {
  chunked(n, [&](std::int64_t at, std::int64_t length) { narrow_span(dst + at, src + at, length); });
}

double sum_of_squares_bf16(const std::uint16_t* x, std::int64_t n) {
  // Fixed blocks, as the f32 kernel: the sum does not depend on the thread count.
  std::vector<double> partial(static_cast<std::size_t>(chunks_of(n)));
#pragma omp parallel for if (parallel_worth(n)) schedule(static)
  for (std::int64_t chunk = 0; chunk < chunks_of(n); ++chunk) {
    const std::int64_t begin = chunk * kChunk;
    partial[static_cast<std::size_t>(chunk)] = sum_of_squares_span(x + begin, std::min(kChunk, n - begin));
  }
  double total = 0;
  for (double part : partial) total += part;
  return total;
}

bool all_finite_bf16(const std::uint16_t* x, std::int64_t n) {
  std::int64_t nonfinite = 0;
#pragma omp parallel for if (parallel_worth(n)) reduction(+ : nonfinite) schedule(static)
  for (std::int64_t chunk = 0; chunk < chunks_of(n); ++chunk) {
    const std::int64_t begin = chunk * kChunk;
    nonfinite += count_nonfinite_span(x + begin, std::min(kChunk, n - begin));
  }
  return nonfinite == 0;
}

}  // namespace kiln::cpu
