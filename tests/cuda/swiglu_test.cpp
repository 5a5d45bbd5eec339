// kernels/cuda/swiglu.cu under the emulated device against kiln::ops::swiglu_forward/backward
// on the halves of one fused [rows, 2F] buffer, as the model calls them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cuda/swiglu.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_checks.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

OwnedTensor f64_matrix(const std::vector<float>& values, std::int64_t rows, std::int64_t cols) {
  OwnedTensor tensor(DType::F64, {rows, cols});
  for (std::size_t i = 0; i < values.size(); ++i) tensor.data<double>()[i] = values[i];
  return tensor;
}

struct Shape {
  std::int64_t rows, hidden;
};
// One row; F below, at and off the pack widths (4 f32, 8 bf16); more groups than 3 blocks.
const Shape kShapes[] = {{1, 1}, {1, 37}, {3, 64}, {5, 100}, {2, 260}, {97, 64}};

std::vector<double> reference_forward(const std::vector<float>& gate_up, Shape shape) {
  const OwnedTensor fused = f64_matrix(gate_up, shape.rows, 2 * shape.hidden);
  OwnedTensor out(DType::F64, {shape.rows, shape.hidden});
  const Tensor whole = fused;
  ops::swiglu_forward(out, whole.narrow(-1, 0, shape.hidden), whole.narrow(-1, shape.hidden, shape.hidden));
  return values_of(out);
}

struct Backward {
  std::vector<double> dgate_up, scale;
};
// ops::swiglu_backward into the halves of one [rows, 2F] buffer, and each result's term scale:
// dgate = dout u s (1 + g (1 - s)) cancels where g (1 - s) = -1 (g near -1.28), so its scale
// is |dout u s| (1 + |g (1 - s)|); dup = dout g s is a plain product, its own magnitude.
Backward reference_backward(const std::vector<float>& dout, const std::vector<float>& gate_up, Shape shape) {
  const OwnedTensor fused = f64_matrix(gate_up, shape.rows, 2 * shape.hidden);
  const OwnedTensor gradient = f64_matrix(dout, shape.rows, shape.hidden);
  OwnedTensor dfused(DType::F64, {shape.rows, 2 * shape.hidden});
  const Tensor whole = fused, dwhole = dfused;
  const std::int64_t f = shape.hidden;
  ops::swiglu_backward(dwhole.narrow(-1, 0, f), dwhole.narrow(-1, f, f), gradient, whole.narrow(-1, 0, f),
                       whole.narrow(-1, f, f));
  Backward out{values_of(dfused), std::vector<double>(gate_up.size())};
  for (std::int64_t r = 0; r < shape.rows; ++r) {
    for (std::int64_t c = 0; c < f; ++c) {
      const double g = gate_up[r * 2 * f + c], u = gate_up[r * 2 * f + f + c], d = dout[r * f + c];
      const double s = 1.0 / (1.0 + std::exp(-g));
      out.scale[r * 2 * f + c] = std::abs(d * u * s) * (1.0 + std::abs(g * (1.0 - s)));
      out.scale[r * 2 * f + f + c] = std::abs(d * g * s);
    }
  }
  return out;
}

std::size_t count(Shape shape, std::int64_t per_row) { return static_cast<std::size_t>(shape.rows * per_row); }

// fp32: an exp, a division and products: a few ulp, inside 1e-5 (of the terms for dgate).
TEST(CudaSwiglu, F32MatchesTheCpuOpForAwkwardShapes) {
  for (const Shape shape : kShapes) {
    const std::vector<float> gate_up = random_values(count(shape, 2 * shape.hidden), 51, -4.0f, 4.0f);
    const std::vector<float> dout = random_values(count(shape, shape.hidden), 52);
    DeviceBuffer<float> dgate_up_input(gate_up), ddout(dout), dout_forward(dout.size()), dgrad(gate_up.size());
    device::swiglu_forward(dout_forward.data(), dgate_up_input.data(), shape.rows, shape.hidden, nullptr);
    EXPECT_TRUE(all_close(dout_forward.download(), reference_forward(gate_up, shape), kF32Relative))
        << shape.rows << "x" << shape.hidden;
    dgrad.fill_bytes(0xFF);  // NaN everywhere: the backward must overwrite every element
    device::swiglu_backward(dgrad.data(), ddout.data(), dgate_up_input.data(), shape.rows, shape.hidden, nullptr);
    const Backward want = reference_backward(dout, gate_up, shape);
    EXPECT_TRUE(close_to_scale(dgrad.download(), want.dgate_up, want.scale, kF32Relative))
        << shape.rows << "x" << shape.hidden;
  }
}

// bf16: one rounding of each fp32 result, within 2^-8 of it.
TEST(CudaSwiglu, Bf16WithinOneRoundingOfTheFp32Result) {
  for (const Shape shape : kShapes) {
    const std::vector<__nv_bfloat16> gate_up = to_bf16(random_values(count(shape, 2 * shape.hidden), 53, -4.0f, 4.0f));
    const std::vector<__nv_bfloat16> dout = to_bf16(random_values(count(shape, shape.hidden), 54));
    DeviceBuffer<__nv_bfloat16> dgate_up_input(gate_up), ddout(dout), dout_forward(dout.size()), dgrad(gate_up.size());
    device::swiglu_forward(dout_forward.data(), dgate_up_input.data(), shape.rows, shape.hidden, nullptr);
    EXPECT_TRUE(all_close(to_f32(dout_forward.download()), reference_forward(to_f32(gate_up), shape), kBF16Relative))
        << shape.rows << "x" << shape.hidden;
    device::swiglu_backward(dgrad.data(), ddout.data(), dgate_up_input.data(), shape.rows, shape.hidden, nullptr);
    const Backward want = reference_backward(to_f32(dout), to_f32(gate_up), shape);
    EXPECT_TRUE(close_to_scale(to_f32(dgrad.download()), want.dgate_up, want.scale, kF32Relative, kBF16Rounding))
        << shape.rows << "x" << shape.hidden;
  }
}

// More packs than one grid of threads covers (2112 blocks x 256 = 540672; here 34000 x 16), so
// every thread's grid-stride loop wraps once across row boundaries. Forward only: the launch
// costs ~540k emulated fibers.
TEST(CudaSwiglu, F32MoreGroupsThanOneGrid) {
  const Shape shape{34000, 64};
  const std::vector<float> gate_up = random_values(count(shape, 128), 59);
  DeviceBuffer<float> input(gate_up), out(count(shape, 64));
  device::swiglu_forward(out.data(), input.data(), shape.rows, shape.hidden, nullptr);
  EXPECT_TRUE(all_close(out.download(), reference_forward(gate_up, shape), kF32Relative));
}

TEST(CudaSwiglu, UnalignedBuffersTakeTheScalarPath) {
  const Shape shape{3, 64};
  const std::vector<float> gate_up = random_values(count(shape, 128) + 1, 55);
  DeviceBuffer<float> input(gate_up), out(count(shape, 64) + 1);
  device::swiglu_forward(out.data() + 1, input.data() + 1, shape.rows, shape.hidden, nullptr);
  const std::vector<float> got = out.download();
  EXPECT_TRUE(all_close({got.begin() + 1, got.end()}, reference_forward({gate_up.begin() + 1, gate_up.end()}, shape),
                        kF32Relative));
}

TEST(CudaSwiglu, NanInTheGatePropagatesToItsColumnOnly) {
  const Shape shape{2, 8};
  std::vector<float> gate_up = random_values(count(shape, 16), 56);
  gate_up[16 + 3] = std::numeric_limits<float>::quiet_NaN();  // row 1, gate column 3
  DeviceBuffer<float> input(gate_up), out(count(shape, 8)), dout(std::vector<float>(count(shape, 8), 1.0f)),
      dgrad(gate_up.size());
  device::swiglu_forward(out.data(), input.data(), shape.rows, shape.hidden, nullptr);
  device::swiglu_backward(dgrad.data(), dout.data(), input.data(), shape.rows, shape.hidden, nullptr);
  const std::vector<float> y = out.download(), grad = dgrad.download();
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_EQ(std::isnan(y[i]), i == 8 + 3) << i;
  for (std::size_t i = 0; i < grad.size(); ++i) EXPECT_EQ(std::isnan(grad[i]), i == 16 + 3 || i == 16 + 8 + 3) << i;
}

TEST(CudaSwiglu, SameResultUnderAnotherSchedule) {
  const Shape shape{97, 64};
  const std::vector<__nv_bfloat16> gate_up = to_bf16(random_values(count(shape, 128), 57));
  const std::vector<__nv_bfloat16> dout = to_bf16(random_values(count(shape, 64), 58));
  DeviceBuffer<__nv_bfloat16> input(gate_up), ddout(dout), first(gate_up.size()), second(gate_up.size());
  with_schedule_seed(1, [&] { device::swiglu_backward(first.data(), ddout.data(), input.data(), 97, 64, nullptr); });
  with_schedule_seed(987654321, [&] { device::swiglu_backward(second.data(), ddout.data(), input.data(), 97, 64, nullptr); });
  EXPECT_TRUE(bitwise_equal(to_f32(first.download()), to_f32(second.download())));
}

TEST(CudaSwiglu, BadArgumentsAreErrors) {
  DeviceBuffer<float> a(16), b(16), c(16);
  EXPECT_THROW(device::swiglu_forward(a.data(), b.data(), -1, 4, nullptr), kiln::Error);
  EXPECT_THROW(device::swiglu_forward(a.data(), b.data(), 2, 0, nullptr), kiln::Error);
  EXPECT_THROW(device::swiglu_backward(a.data(), nullptr, c.data(), 2, 4, nullptr), kiln::Error);
}

}  // namespace
}  // namespace kiln::cuda_test
