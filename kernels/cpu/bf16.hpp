#pragma once
// bf16 storage kernels: the conversions the ops layer stages through, and the few reductions
// that read bf16 directly. Math is fp32 (sums of squares: fp64), storage 16 bits.
//
// The inline conversions are the same rounding as kiln::to_bfloat16 (round to nearest even,
// NaN stays a quiet NaN) written branch-free on the bits, so loops over them vectorise;
// tests/kernels/bf16_ops_test.cpp checks that the two agree bit for bit.
#include <bit>
#include <cstdint>

namespace kiln::cpu {

inline float bf16_bits_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

inline std::uint16_t float_to_bf16_bits(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const std::uint32_t quiet_nan = (bits >> 16) | 0x40u;
  const bool is_nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
  return static_cast<std::uint16_t>(is_nan ? quiet_nan : rounded);
}

// dst[i] = float(src[i]) / dst[i] = bf16(src[i]), n contiguous elements.
void widen_bf16(float* dst, const std::uint16_t* src, std::int64_t n);
void narrow_to_bf16(std::uint16_t* dst, const float* src, std::int64_t n);

// Element-wise ops on bf16 storage in one pass, fp32 math, one rounding per result:
// out = a + b;  y = y + alpha x;  x = x * factor.
void add_bf16(std::uint16_t* out, const std::uint16_t* a, const std::uint16_t* b, std::int64_t n);
void axpy_bf16(std::uint16_t* y, float alpha, const std::uint16_t* x, std::int64_t n);
void scale_bf16(std::uint16_t* x, float factor, std::int64_t n);

// sum of x^2 in double, in the fixed blocks of the f32 kernel (thread-count independent).
double sum_of_squares_bf16(const std::uint16_t* x, std::int64_t n);
// false when any element is NaN or +-inf (exponent bits all set).
bool all_finite_bf16(const std::uint16_t* x, std::int64_t n);

}  // namespace kiln::cpu
