#pragma once
// Checks shared by the CUDA kernel tests beyond kernel_reference.hpp: tolerances scaled by the
// magnitude of the terms a result sums (where the result can cancel to near zero), bitwise
// comparison, and runs under a chosen emulator schedule for the determinism checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#if KILN_CUDA_EMULATED
#include "kernels/cuda/emulation/execution.hpp"
#endif

namespace kiln::cuda_test {

// |got - want| <= relative * scale + bf16_share * |want| for every element. `scale` is the sum
// of the magnitudes of the terms that make up the result (its condition): an fp32 sum of terms
// is accurate to a few ulp of that, not of the result when the terms cancel. `bf16_share` is
// 2^-8 for a result stored in bf16 (one rounding of the fp32 value), 0 for f32.
inline ::testing::AssertionResult close_to_scale(const std::vector<float>& got, const std::vector<double>& want,
                                                 const std::vector<double>& scale, double relative,
                                                 double bf16_share = 0.0) {
  if (got.size() != want.size() || got.size() != scale.size())
    return ::testing::AssertionFailure() << "sizes " << got.size() << ", " << want.size() << ", " << scale.size();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double error = std::abs(static_cast<double>(got[i]) - want[i]);
    if (!(error <= relative * scale[i] + bf16_share * std::abs(want[i]) + 1e-30))
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << " vs reference " << want[i]
                                           << " (error " << error << ", term scale " << scale[i] << ")";
  }
  return ::testing::AssertionSuccess();
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Runs `work` with the emulator's block order and thread schedule drawn from `seed` (a real GPU
// schedules as it likes, so there the seed is ignored and the run is simply repeated).
template <class Work>
void with_schedule_seed(std::uint64_t seed, Work&& work) {
#if KILN_CUDA_EMULATED
  const std::uint64_t previous = kiln::emu::schedule_seed();
  kiln::emu::set_schedule_seed(seed);
  work();
  kiln::emu::set_schedule_seed(previous);
#else
  (void)seed;
  work();
#endif
}

// What `run` returns (a vector of what its launches wrote) is bitwise the same under two
// schedules: a kernel whose bits depend on block order or thread interleaving fails, so a run
// resumes bit for bit.
template <class Run>
void expect_same_bits_under_two_schedules(Run&& run, std::uint64_t first_seed = 11, std::uint64_t second_seed = 77777) {
  decltype(run()) first, second;
  with_schedule_seed(first_seed, [&] { first = run(); });
  with_schedule_seed(second_seed, [&] { second = run(); });
  EXPECT_TRUE(bitwise_equal(first, second));
}

// dw and db are sums over rows: per chunk of 32 rows, then the chunk sums in order. Recursive
// fp32 summation of m terms is within (m - 1) 2^-24 of the sum of their magnitudes, plus a
// few roundings per term: the tolerance is that bound where it exceeds kF32Relative.
inline double weight_grad_tolerance(std::int64_t rows, double at_least) {
  const double chunks = std::ceil(static_cast<double>(rows) / 32.0);
  return std::max(at_least, (32.0 + chunks + 4.0) * std::ldexp(1.0, -24));
}

inline constexpr double kBF16Rounding = 1.0 / 256.0;  // unit roundoff of bf16's 8-bit significand

}  // namespace kiln::cuda_test
