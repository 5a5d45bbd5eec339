#pragma once
// Shared helpers for the kernel tests: random tensors, conversions, and a central
// finite-difference gradient check in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/ops.hpp"
#include "kernels/tensor.hpp"
#include "trainer/core/random.hpp"

namespace kiln::testing {

// Uniform in [low, high): never exact zeros in practice, as the design asks of test inputs.
inline OwnedTensor random_tensor(DType dtype, Shape shape, std::uint64_t seed, double low = -1.0,
                                 double high = 1.0) {
  OwnedTensor tensor(dtype, shape);
  Rng rng(seed);
  for (std::int64_t i = 0; i < tensor.numel(); ++i) {
    const double value = low + (high - low) * rng.uniform();
    if (dtype == DType::F32) {
      tensor.data<float>()[i] = static_cast<float>(value);
    } else {
      tensor.data<double>()[i] = value;
    }
  }
  return tensor;
}

// Any floating tensor (strided too) as a flat vector of doubles in row-major order.
inline std::vector<double> to_vector(const Tensor& tensor) {
  OwnedTensor dense(DType::F64, tensor.shape);
  ops::copy(dense, tensor);
  return {dense.data<double>(), dense.data<double>() + dense.numel()};
}

// The same values in another dtype (f64 -> f32 for float-vs-double checks).
inline OwnedTensor converted(const Tensor& tensor, DType dtype) {
  OwnedTensor result(dtype, tensor.shape);
  ops::copy(result, tensor);
  return result;
}

// max |a - b| / max(max |b|, floor): one relative number for a whole tensor.
inline double relative_error(const std::vector<double>& actual, const std::vector<double>& expected,
                             double floor = 1e-12) {
  EXPECT_EQ(actual.size(), expected.size());
  double worst = 0, scale = floor;
  for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    if (std::isnan(actual[i]) || std::isnan(expected[i])) return INFINITY;
    worst = std::max(worst, std::fabs(actual[i] - expected[i]));
    scale = std::max(scale, std::fabs(expected[i]));
  }
  return worst / scale;
}

// Random weights w for the scalar test loss L = sum(out * w).
inline std::vector<double> loss_weights(std::int64_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> w(static_cast<std::size_t>(n));
  for (double& value : w) value = 2.0 * rng.uniform() - 1.0;
  return w;
}

inline double weighted_sum(const Tensor& out, const std::vector<double>& w) {
  const std::vector<double> values = to_vector(out);
  double sum = 0;
  for (std::size_t i = 0; i < values.size(); ++i) sum += values[i] * w[i];
  return sum;
}

// Central differences of loss() with respect to every element of the contiguous f64 tensor
// `input` (or `max_elements` of them, evenly spread), compared with `analytic`.
// Returns the relative error (max abs difference over max |gradient|).
inline double gradient_check(const Tensor& input, const std::vector<double>& analytic,
                             const std::function<double()>& loss, double step = 1e-5,
                             std::int64_t max_elements = 400) {
  double* values = input.data<double>();
  const std::int64_t n = input.numel();
  const std::int64_t stride = std::max<std::int64_t>(1, n / max_elements);
  std::vector<double> numeric, expected;
  for (std::int64_t i = 0; i < n; i += stride) {
    const double saved = values[i];
    values[i] = saved + step;
    const double up = loss();
    values[i] = saved - step;
    const double down = loss();
    values[i] = saved;
    numeric.push_back((up - down) / (2 * step));
    expected.push_back(analytic[static_cast<std::size_t>(i)]);
  }
  return relative_error(numeric, expected);
}

}  // namespace kiln::testing
