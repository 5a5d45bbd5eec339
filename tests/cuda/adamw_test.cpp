// kernels/cuda/adamw.cu under the emulated device against kiln::ops::adamw_step_segments and
// kiln::ops::sum_of_squares.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cuda/adamw.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_checks.hpp"
#include "tests/cuda/kernel_reference.hpp"

#if KILN_CUDA_EMULATED
#include "kernels/cuda/emulation/execution.hpp"
#endif

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;

// Offsets off the pack width (3, 41) and on it; lengths 1, 37, 64, 1000 (packs + tail); state
// offsets that differ from the parameter offsets; decay on and off.
const std::vector<device::AdamWDeviceSegment> kSegments = {
    {3, 0, 37, 1}, {40, 37, 1, 0}, {44, 40, 64, 1}, {112, 104, 1000, 0}, {1200, 1109, 7, 1}};
constexpr std::int64_t kParams = 1300, kStates = 1116;

device::AdamWHyper hyper() {
  device::AdamWHyper h;
  h.lr = 3e-3, h.beta1 = 0.9, h.beta2 = 0.95, h.eps = 1e-8, h.weight_decay = 0.1, h.step = 3, h.grad_scale = 0.5;
  return h;
}

struct State {
  std::vector<float> params, grads, m, v;
};
// Positive moments and gradients, parameters well away from 0: no cancellation in m, v or p,
// so the f32 results are within a few ulp of the f64 reference (1e-5 relative).
State random_state() {
  return {random_values(kParams, 51, 0.5f, 3.0f), random_values(kStates, 52, 0.1f, 2.0f),
          random_values(kStates, 53, 0.0f, 0.5f), random_values(kStates, 54, 0.0f, 0.5f)};
}

OwnedTensor f64_flat(const std::vector<float>& values) {
  OwnedTensor t(DType::F64, {static_cast<std::int64_t>(values.size())});
  for (std::size_t i = 0; i < values.size(); ++i) t.data<double>()[i] = values[i];
  return t;
}

struct Reference {
  std::vector<double> params, m, v;
};
Reference reference_adamw(const State& s) {
  OwnedTensor p = f64_flat(s.params), g = f64_flat(s.grads), m = f64_flat(s.m), v = f64_flat(s.v);
  std::vector<ops::AdamWSegment> segments;
  for (const auto& k : kSegments) segments.push_back({k.param_offset, k.state_offset, k.length, k.weight_decay != 0});
  const device::AdamWHyper h = hyper();
  ops::AdamWStep step;
  step.lr = h.lr, step.beta1 = h.beta1, step.beta2 = h.beta2, step.eps = h.eps, step.weight_decay = h.weight_decay;
  step.step = h.step, step.grad_scale = h.grad_scale;
  ops::adamw_step_segments(p, g, m, v, segments, step);
  return {values_of(p), values_of(m), values_of(v)};
}

// The segment table in device memory, as the trainer would upload it once.
DeviceBuffer<device::AdamWDeviceSegment> device_segments() {
  device::validate_adamw_segments(kSegments.data(), static_cast<int>(kSegments.size()), kParams, kStates);
  return DeviceBuffer<device::AdamWDeviceSegment>(kSegments);
}

TEST(CudaAdamW, F32MasterAndMomentsMatchTheCpuOpAndTheBf16CopyIsOneRounding) {
  const State s = random_state();
  DeviceBuffer<float> p(s.params), g(s.grads), m(s.m), v(s.v);
  DeviceBuffer<__nv_bfloat16> working(std::vector<__nv_bfloat16>(kParams, __nv_bfloat16{}));
  working.fill_bytes(0);
  const auto segments = device_segments();
  device::adamw_step_segments(p.data(), working.data(), g.data(), m.data(), v.data(), segments.data(),
                              static_cast<int>(kSegments.size()), hyper(), nullptr);
  const Reference want = reference_adamw(s);
  const std::vector<float> got = p.download();
  EXPECT_TRUE(all_close(got, want.params, kF32Relative));
  EXPECT_TRUE(all_close(m.download(), want.m, kF32Relative));
  EXPECT_TRUE(all_close(v.download(), want.v, kF32Relative));
  EXPECT_EQ(g.download(), s.grads);  // grads are not modified
  // The working copy: the new master rounded once inside the segments, untouched (0) outside.
  const std::vector<float> copy = to_f32(working.download());
  std::vector<bool> inside(kParams, false);
  for (const auto& k : kSegments)
    for (std::int64_t i = 0; i < k.length; ++i) inside[static_cast<std::size_t>(k.param_offset + i)] = true;
  std::vector<float> copy_inside;
  std::vector<double> want_inside;
  for (std::size_t i = 0; i < copy.size(); ++i) {
    if (inside[i]) copy_inside.push_back(copy[i]), want_inside.push_back(want.params[i]);
    if (!inside[i]) {
      ASSERT_EQ(copy[i], 0.0f) << i;
      ASSERT_EQ(got[i], s.params[i]) << i;
      continue;
    }
    ASSERT_EQ(copy[i], to_f32(to_bf16({got[i]}))[0]) << i;  // exactly bf16(master), round to nearest even
  }
  EXPECT_TRUE(all_close(copy_inside, want_inside, kBF16Relative));
}

TEST(CudaAdamW, F32WorkingCopyEqualsTheMasterAndIsOptional) {
  const State s = random_state();
  DeviceBuffer<float> p(s.params), g(s.grads), m(s.m), v(s.v), working(s.params);
  const auto segments = device_segments();
  device::adamw_step_segments(p.data(), working.data(), g.data(), m.data(), v.data(), segments.data(),
                              static_cast<int>(kSegments.size()), hyper(), nullptr);
  EXPECT_EQ(working.download(), p.download());
  DeviceBuffer<float> p2(s.params), m2(s.m), v2(s.v);
  device::adamw_step_segments(p2.data(), static_cast<float*>(nullptr), g.data(), m2.data(), v2.data(), segments.data(),
                              static_cast<int>(kSegments.size()), hyper(), nullptr);
  EXPECT_EQ(p2.download(), p.download());
}

TEST(CudaAdamW, ANaNGradientStaysInItsElement) {
  State s = random_state();
  s.grads[40 + 5] = std::numeric_limits<float>::quiet_NaN();  // segment 2, element 5 -> param 49
  DeviceBuffer<float> p(s.params), g(s.grads), m(s.m), v(s.v);
  const auto segments = device_segments();
  device::adamw_step_segments(p.data(), static_cast<float*>(nullptr), g.data(), m.data(), v.data(), segments.data(),
                              static_cast<int>(kSegments.size()), hyper(), nullptr);
  const auto params = p.download(), moments = m.download();
  for (std::size_t i = 0; i < params.size(); ++i) EXPECT_EQ(std::isnan(params[i]), i == 49) << i;
  for (std::size_t i = 0; i < moments.size(); ++i) EXPECT_EQ(std::isnan(moments[i]), i == 45) << i;
}

TEST(CudaAdamW, BadArgumentsAndTablesAreErrors) {
  DeviceBuffer<float> p(8), g(8), m(8), v(8);
  const auto segments = DeviceBuffer<device::AdamWDeviceSegment>(std::vector<device::AdamWDeviceSegment>{{0, 0, 8, 1}});
  auto bad = hyper();
  bad.step = 0;
  EXPECT_THROW(device::adamw_step_segments(p.data(), static_cast<float*>(nullptr), g.data(), m.data(), v.data(),
                                           segments.data(), 1, bad, nullptr),
               kiln::Error);
  bad = hyper();
  bad.beta2 = 1.0;
  EXPECT_THROW(device::adamw_step_segments(p.data(), static_cast<float*>(nullptr), g.data(), m.data(), v.data(),
                                           segments.data(), 1, bad, nullptr),
               kiln::Error);
  EXPECT_THROW(device::adamw_step_segments(p.data(), static_cast<float*>(nullptr), nullptr, m.data(), v.data(),
                                           segments.data(), 1, hyper(), nullptr),
               kiln::Error);
  const std::vector<device::AdamWDeviceSegment> outside = {{4, 0, 8, 0}}, overlapping = {{0, 0, 4, 0}, {2, 4, 4, 0}},
                                                shared_state = {{0, 0, 4, 0}, {4, 2, 4, 0}};
  EXPECT_THROW(device::validate_adamw_segments(outside.data(), 1, 8, 8), kiln::Error);
  EXPECT_THROW(device::validate_adamw_segments(overlapping.data(), 2, 8, 8), kiln::Error);
  EXPECT_THROW(device::validate_adamw_segments(shared_state.data(), 2, 8, 8), kiln::Error);
  EXPECT_NO_THROW(device::validate_adamw_segments(kSegments.data(), static_cast<int>(kSegments.size()), kParams, kStates));
}

const std::vector<device::DeviceFlatRange> kRanges = {{3, 37}, {40, 1}, {44, 64}, {112, 3000}, {5000, 7}};
constexpr std::int64_t kFlat = 5010;

double reference_sum_of_squares(const std::vector<float>& x) {
  OwnedTensor total(DType::F64, {1});
  std::vector<ops::FlatRange> ranges;
  for (const auto& r : kRanges) ranges.push_back({r.offset, r.length});
  ops::sum_of_squares(total, f64_flat(x), ranges);
  return total.data<double>()[0];
}

struct SumResult {
  double total;
  std::int32_t non_finite;
};
SumResult device_sum_of_squares(const std::vector<float>& x) {
  DeviceBuffer<float> dx(x);
  DeviceBuffer<device::DeviceFlatRange> ranges(kRanges);
  DeviceBuffer<double> total(1), partials(device::kSumOfSquaresPartials);
  DeviceBuffer<std::int32_t> flag(std::vector<std::int32_t>{-7});
  partials.fill_bytes(0xFF);  // NaN: every partial must be written
  device::sum_of_squares(total.data(), flag.data(), dx.data(), ranges.data(), static_cast<int>(kRanges.size()),
                         partials.data(), nullptr);
  return {total.download()[0], flag.download()[0]};
}

// f64 accumulation on both sides, in different orders: ~n ulp of f64, far inside 1e-12.
TEST(CudaSumOfSquares, MatchesTheCpuOpOverRangesInF64) {
  auto x = random_values(kFlat, 55);
  x[0] = 1e6f;  // outside every range: must not count
  const SumResult got = device_sum_of_squares(x);
  const double want = reference_sum_of_squares(x);
  EXPECT_NEAR(got.total, want, 1e-12 * want);
  EXPECT_EQ(got.non_finite, 0);
}

TEST(CudaSumOfSquares, NonFiniteValuesRaiseTheFlag) {
  auto x = random_values(kFlat, 56);
  x[3000] = std::numeric_limits<float>::quiet_NaN();
  SumResult got = device_sum_of_squares(x);
  EXPECT_TRUE(std::isnan(got.total));
  EXPECT_EQ(got.non_finite, 1);
  x[3000] = -std::numeric_limits<float>::infinity();
  got = device_sum_of_squares(x);
  EXPECT_TRUE(std::isinf(got.total));
  EXPECT_EQ(got.non_finite, 1);
  x[3000] = std::numeric_limits<float>::max();  // squares overflow f32 but not the f64 sum
  got = device_sum_of_squares(x);
  EXPECT_TRUE(std::isfinite(got.total));
  EXPECT_EQ(got.non_finite, 0);
}

TEST(CudaSumOfSquares, BadArgumentsAreErrors) {
  DeviceBuffer<double> total(1), partials(device::kSumOfSquaresPartials);
  DeviceBuffer<float> x(4);
  EXPECT_THROW(device::sum_of_squares(total.data(), nullptr, x.data(), nullptr, 1, partials.data(), nullptr), kiln::Error);
  EXPECT_THROW(device::sum_of_squares(total.data(), nullptr, x.data(), nullptr, -1, partials.data(), nullptr), kiln::Error);
  EXPECT_THROW(device::sum_of_squares(total.data(), nullptr, x.data(), nullptr, 0, nullptr, nullptr), kiln::Error);
}

TEST(CudaSumOfSquares, SameBitsUnderAnotherSchedule) {
  const auto x = random_values(kFlat, 57);
  expect_same_bits_under_two_schedules([&] { return std::vector<double>{device_sum_of_squares(x).total}; });
}

TEST(CudaAdamW, SameBitsUnderAnotherSchedule) {
  const State s = random_state();
  expect_same_bits_under_two_schedules([&] {
    DeviceBuffer<float> p(s.params), g(s.grads), m(s.m), v(s.v);
    const auto segments = device_segments();
    device::adamw_step_segments(p.data(), static_cast<float*>(nullptr), g.data(), m.data(), v.data(), segments.data(),
                                static_cast<int>(kSegments.size()), hyper(), nullptr);
    return p.download();
  });
}

}  // namespace
}  // namespace kiln::cuda_test
