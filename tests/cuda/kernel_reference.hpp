#pragma once
// Inputs and comparisons shared by the CUDA kernel tests: seeded random values, bf16 rounding
// of host data, and the tolerances (stated once, derived from the formats, not tuned).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <bit>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/tensor.hpp"

namespace kiln::cuda_test {

// fp32 results: the kernels' sums run in a different order than the reference's, so a few ulp
// of float, well inside 1e-5 relative.
inline constexpr double kF32Relative = 1e-5;
// bf16 results: the fp32 value (within kF32Relative of the reference) is rounded once to
// nearest even, which moves it by at most the bf16 unit roundoff 2^-8 of its magnitude.
inline constexpr double kBF16Relative = 1.0 / 256.0 + kF32Relative;

// Host f64 tensors for the kiln::ops reference: the (f32-exact) inputs widened, and the
// reference's results read back.
inline OwnedTensor f64_of(const std::vector<float>& values, kiln::Shape extents) {
  OwnedTensor tensor(DType::F64, extents);
  for (std::size_t i = 0; i < values.size(); ++i) tensor.data<double>()[i] = values[i];
  return tensor;
}
inline std::vector<double> values_of(const OwnedTensor& tensor) {
  return {tensor.data<double>(), tensor.data<double>() + tensor.numel()};
}

inline std::vector<float> random_values(std::size_t count, std::uint32_t seed, float low = -3.0f, float high = 3.0f) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float> values(count);
  for (float& value : values) value = distribution(engine);
  return values;
}

// The bits of a bf16 value by bit_cast: CUDA's __nv_bfloat16 keeps them protected, so this
// compiles against the real cuda_bf16.h too (the kernel tests also build for the GPU).
inline std::uint16_t bits_of(__nv_bfloat16 value) { return std::bit_cast<std::uint16_t>(value); }

inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& values) {
  std::vector<__nv_bfloat16> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = std::bit_cast<__nv_bfloat16>(kiln::to_bfloat16(values[i]).bits);
  return out;
}

inline std::vector<float> to_f32(const std::vector<__nv_bfloat16>& values) {
  std::vector<float> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = kiln::to_float(kiln::BFloat16{bits_of(values[i])});
  return out;
}

inline std::vector<double> to_f64(const std::vector<float>& values) { return {values.begin(), values.end()}; }

// Every element within `relative` of the reference (plus a floor for values near zero).
inline ::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<double>& want,
                                            double relative, double absolute = 1e-7) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "sizes " << got.size() << " vs " << want.size();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double error = std::abs(static_cast<double>(got[i]) - want[i]);
    if (!(error <= relative * std::abs(want[i]) + absolute))
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << " vs reference " << want[i]
                                           << " (error " << error << ")";
  }
  return ::testing::AssertionSuccess();
}

// Attention that rounds its probabilities (and their gradients) to bf16 before the second
// product, as FlashAttention-2 and cuDNN do: no longer within one bf16 rounding per element, so
// the bound is on the whole tensor (relative L2 error 6e-3) and on each element against the
// tensor's largest magnitude (2e-2).
inline ::testing::AssertionResult close_to_bf16_accuracy(const std::vector<float>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "sizes " << got.size() << " vs " << want.size();
  double error_squares = 0.0, want_squares = 0.0, largest = 0.0;
  for (const double w : want) largest = std::max(largest, std::abs(w));
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double error = std::abs(static_cast<double>(got[i]) - want[i]);
    if (!(error <= 2e-2 * largest + 1e-6))
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << " vs reference " << want[i]
                                           << " (largest magnitude " << largest << ")";
    error_squares += error * error, want_squares += want[i] * want[i];
  }
  const double relative = std::sqrt(error_squares / std::max(want_squares, 1e-300));
  if (!(relative <= 6e-3)) return ::testing::AssertionFailure() << "relative L2 error " << relative;
  return ::testing::AssertionSuccess();
}

// A [B, T, H, D] view of heads [first, first + H) of a [B, T, width, D] buffer (q, k, v of
// one fused qkv row).
inline Tensor heads_view(const Tensor& buffer, std::int64_t first, std::int64_t count) {
  const std::int64_t B = buffer.size(0), T = buffer.size(1), width = buffer.size(2), D = buffer.size(3);
  auto* start = static_cast<char*>(buffer.ptr) + first * D * static_cast<std::int64_t>(dtype_size(buffer.dtype));
  return Tensor(start, buffer.dtype, Shape{B, T, count, D}, Shape{T * width * D, width * D, D, 1}, buffer.device);
}

}  // namespace kiln::cuda_test
