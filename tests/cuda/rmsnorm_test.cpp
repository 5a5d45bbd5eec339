// kernels/cuda/rmsnorm.cu under the emulated device against kiln::ops::rmsnorm_forward.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/cuda/rmsnorm.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

constexpr float kEps = 1e-5f;

struct Reference {
  std::vector<double> y, rstd;
};

// ops::rmsnorm_forward in f64 over the (f32-exact) inputs.
Reference reference_rmsnorm(const std::vector<float>& x, const std::vector<float>& w, std::int64_t rows, std::int64_t channels) {
  OwnedTensor tx(DType::F64, {rows, channels}), tw(DType::F64, {channels}), ty(DType::F64, {rows, channels}),
      trstd(DType::F64, {rows});
  for (std::size_t i = 0; i < x.size(); ++i) tx.data<double>()[i] = x[i];
  for (std::size_t i = 0; i < w.size(); ++i) tw.data<double>()[i] = w[i];
  ops::rmsnorm_forward(ty, trstd, tx, tw, kEps);
  return {{ty.data<double>(), ty.data<double>() + x.size()}, {trstd.data<double>(), trstd.data<double>() + rows}};
}

struct Shape {
  std::int64_t rows, channels;
};
// One row; channels below, at and off the pack widths (4 f32, 8 bf16) and above a warp's
// 32 lanes x 8; more rows than one grid of warps covers (1056 blocks x 8 warps = 8448).
const Shape kShapes[] = {{1, 1}, {1, 37}, {3, 64}, {5, 100}, {2, 260}, {4, 1030}, {8448 + 21, 8}};

TEST(CudaRmsnorm, F32MatchesTheCpuOpForAwkwardShapes) {
  for (const Shape& shape : kShapes) {
    const auto count = static_cast<std::size_t>(shape.rows * shape.channels);
    const std::vector<float> x = random_values(count, 11), w = random_values(static_cast<std::size_t>(shape.channels), 12, 0.5f, 1.5f);
    DeviceBuffer<float> dx(x), dw(w), dy(count), drstd(static_cast<std::size_t>(shape.rows));
    device::rmsnorm_forward(dy.data(), drstd.data(), dx.data(), dw.data(), shape.rows, shape.channels, kEps, nullptr);
    const Reference want = reference_rmsnorm(x, w, shape.rows, shape.channels);
    EXPECT_TRUE(all_close(dy.download(), want.y, kF32Relative)) << shape.rows << "x" << shape.channels;
    EXPECT_TRUE(all_close(drstd.download(), want.rstd, kF32Relative)) << shape.rows << "x" << shape.channels;
  }
}

TEST(CudaRmsnorm, Bf16WithinOneRoundingOfTheFp32Result) {
  for (const Shape& shape : kShapes) {
    const auto count = static_cast<std::size_t>(shape.rows * shape.channels);
    const std::vector<__nv_bfloat16> x = to_bf16(random_values(count, 13));
    const std::vector<__nv_bfloat16> w = to_bf16(random_values(static_cast<std::size_t>(shape.channels), 14, 0.5f, 1.5f));
    DeviceBuffer<__nv_bfloat16> dx(x), dw(w), dy(count);
    DeviceBuffer<float> drstd(static_cast<std::size_t>(shape.rows));
    device::rmsnorm_forward(dy.data(), drstd.data(), dx.data(), dw.data(), shape.rows, shape.channels, kEps, nullptr);
    const Reference want = reference_rmsnorm(to_f32(x), to_f32(w), shape.rows, shape.channels);
    EXPECT_TRUE(all_close(to_f32(dy.download()), want.y, kBF16Relative)) << shape.rows << "x" << shape.channels;
    EXPECT_TRUE(all_close(drstd.download(), want.rstd, kF32Relative)) << shape.rows << "x" << shape.channels;
  }
}

TEST(CudaRmsnorm, RstdIsOptionalAndBadShapesAreErrors) {
  const std::vector<float> x = random_values(2 * 16, 15), w(16, 1.0f);
  DeviceBuffer<float> dx(x), dw(w), dy(x.size());
  device::rmsnorm_forward(dy.data(), nullptr, dx.data(), dw.data(), 2, 16, kEps, nullptr);
  EXPECT_TRUE(all_close(dy.download(), reference_rmsnorm(x, w, 2, 16).y, kF32Relative));
  EXPECT_THROW(device::rmsnorm_forward(dy.data(), nullptr, dx.data(), dw.data(), 2, 0, kEps, nullptr), kiln::Error);
  EXPECT_THROW(device::rmsnorm_forward(dy.data(), nullptr, dx.data(), dw.data(), -1, 16, kEps, nullptr), kiln::Error);
}

}  // namespace
}  // namespace kiln::cuda_test
