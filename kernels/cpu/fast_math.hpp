#pragma once
// Branch-free exp and sigmoid for the softmax and activation loops (attention, cross-entropy,
// GELU, SwiGLU). glibc's expf/tanhf are scalar calls that stop a loop from vectorising; these
// are plain arithmetic, so `omp simd` loops around them become vector code. Always inlined:
// the AVX-512/AVX2 clones of the kernels (KILN_SIMD_CLONES) have another arch than these
// baseline functions, and GCC would otherwise call them once per element. Double keeps std::exp: the f64 path is the accurate reference
// used by gradient checks.
#include <bit>
#include <cmath>
#include <cstdint>

namespace kiln::cpu {

// e^x for x <= 88 (softmax arguments are <= 0), within ~2 ulp; 0 below -87.3 (and for -inf);
// NaN stays NaN. Above 88 it saturates at e^88 instead of overflowing.
// x = k ln2 + r with |r| <= ln2 / 2; e^r from its degree-6 Taylor polynomial (truncation
// ~1e-7 relative); 2^k written straight into the exponent bits.
[[gnu::always_inline]] inline float exp_fast(float x) {
  // Plain selects, not fmin/fmax (library calls that block vectorisation). NaN is parked at 0
  // for the arithmetic (converting NaN to int is undefined) and restored at the end.
  float clamped = x < -87.3f ? -87.3f : x;
  clamped = clamped > 88.0f ? 88.0f : clamped;
  clamped = clamped == clamped ? clamped : 0.0f;
  // Round to nearest by the 1.5 * 2^23 trick (no SSE4.1 round instruction needed).
  constexpr float kRound = 12582912.0f;
  const float k = (clamped * 1.44269504088896341f + kRound) - kRound;
  const float r = (clamped - k * 0.693359375f) + k * 2.12194440e-4f;  // Cody-Waite ln2 split
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const auto exponent = static_cast<std::int32_t>(k) + 127;
  const float scale = std::bit_cast<float>(static_cast<std::uint32_t>(exponent) << 23);
  // NaN must survive: a NaN logit has to surface as a NaN loss.
  return x < -87.3f ? 0.0f : (x == x ? p * scale : x);
}

template <class T>
[[gnu::always_inline]] inline T exp_of(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return exp_fast(x);
  } else {
    return std::exp(x);
  }
}

// 1 / (1 + e^-x). In float, exactly 0 below -87 (where e^-x would saturate and the quotient
// would turn denormal, a slow path on x86) and 1 for large x; NaN stays NaN.
template <class T>
[[gnu::always_inline]] inline T sigmoid_of(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    // Divide unconditionally, then select: a division under a branch cannot be if-converted
    // (it might trap), and the loop would stay scalar.
    const float sigmoid = 1.0f / (1.0f + exp_fast(-x));
    return x < -87.0f ? 0.0f : sigmoid;
  } else {
    return T(1) / (T(1) + std::exp(-x));
  }
}

}  // namespace kiln::cpu
