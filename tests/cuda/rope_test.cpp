// kernels/cuda/rope.cu under the emulated device against kiln::ops::rope_forward/backward,
// on the q and k heads of a fused qkv buffer, rotated in place.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cuda/rope.hpp"
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

struct Shape {
  std::int64_t batch, seq, q_heads, kv_heads, dim;
  std::int64_t rotated() const { return q_heads + kv_heads; }
  std::int64_t width() const { return (q_heads + 2 * kv_heads) * dim; }  // one token of qkv
  std::size_t qkv_size() const { return static_cast<std::size_t>(batch * seq * width()); }
  std::size_t rotated_size() const { return static_cast<std::size_t>(batch * seq * rotated() * dim); }
  device::RopeLayout layout() const {
    return {batch, seq, rotated(), dim, seq * width(), width(), dim};
  }
};
// D/2 = 1 and 5 (no pack), 8 (packs of 4 f32 and 8 bf16), 4 (f32 packs, bf16 scalar) with more
// tokens (1060) than one grid (1056 blocks); GQA (kv heads fewer than q heads); one token.
const Shape kShapes[] = {{1, 1, 1, 0, 2}, {2, 3, 2, 1, 10}, {1, 5, 4, 2, 16}, {2, 530, 1, 0, 8}, {1, 3, 3, 1, 64}};

ops::RopeConfig llama3_config() {
  ops::RopeConfig config;
  config.theta = 500000.0;
  config.llama3_scaling = true;
  return config;
}

std::vector<std::int32_t> random_positions(const Shape& s, std::uint32_t seed) {
  const auto u = random_values(static_cast<std::size_t>(s.batch * s.seq), seed, 0.0f, 10000.0f);
  std::vector<std::int32_t> positions(u.size());
  for (std::size_t i = 0; i < u.size(); ++i) positions[i] = static_cast<std::int32_t>(u[i]);
  return positions;
}

// The q and k heads of qkv as a contiguous [B, T, Hq + Hkv, D] list.
std::vector<float> rotated_heads(const Shape& s, const std::vector<float>& qkv) {
  std::vector<float> heads;
  const std::int64_t part = s.rotated() * s.dim;
  for (std::int64_t token = 0; token < s.batch * s.seq; ++token)
    heads.insert(heads.end(), qkv.begin() + token * s.width(), qkv.begin() + token * s.width() + part);
  return heads;
}

// ops::rope_* in f64 on the rotated heads.
std::vector<double> reference_rope(const Shape& s, const std::vector<float>& heads, const std::vector<std::int32_t>& pos,
                                   bool forward) {
  OwnedTensor x(DType::F64, {s.batch, s.seq, s.rotated(), s.dim}), y(DType::F64, {s.batch, s.seq, s.rotated(), s.dim});
  OwnedTensor p(DType::I32, {s.batch, s.seq});
  for (std::size_t i = 0; i < heads.size(); ++i) x.data<double>()[i] = heads[i];
  std::memcpy(p.data<std::int32_t>(), pos.data(), pos.size() * sizeof(std::int32_t));
  if (forward)
    ops::rope_forward(y, x, p, llama3_config());
  else
    ops::rope_backward(y, x, p, llama3_config());
  return {y.data<double>(), y.data<double>() + y.numel()};
}

// A rotated component can cancel to ~0, so the error is bounded by the pair's magnitude:
// |got - want| <= pair_relative * (|x_i| + |x_{i+D/2}|) + output_relative * |want|.
::testing::AssertionResult rotation_close(const Shape& s, const std::vector<float>& got, const std::vector<double>& want,
                                          const std::vector<float>& input, double pair_relative, double output_relative) {
  const std::int64_t half = s.dim / 2;
  for (std::size_t e = 0; e < got.size(); ++e) {
    const std::int64_t i = static_cast<std::int64_t>(e) % s.dim;
    const std::size_t partner = i < half ? e + static_cast<std::size_t>(half) : e - static_cast<std::size_t>(half);
    const double bound = pair_relative * (std::abs(input[e]) + std::abs(input[partner])) + output_relative * std::abs(want[e]);
    if (!(std::abs(got[e] - want[e]) <= bound))
      return ::testing::AssertionFailure() << "element " << e << ": " << got[e] << " vs " << want[e];
  }
  return ::testing::AssertionSuccess();
}

template <class T>
std::vector<float> as_f32(const std::vector<T>& values) {
  if constexpr (std::is_same_v<T, float>) return values;
  else return to_f32(values);
}

// Rotates the q and k heads of a random qkv buffer in place; checks them against the CPU op
// and that the v heads are untouched.
template <class T>
void check_in_place(const Shape& s, bool forward, double output_relative) {
  std::vector<float> qkv = random_values(s.qkv_size(), 41);
  std::vector<T> stored;
  if constexpr (std::is_same_v<T, float>) stored = qkv;
  else stored = to_bf16(qkv);
  qkv = as_f32(stored);  // the values the kernel sees
  const auto positions = random_positions(s, 42);
  const std::vector<double> inv_freq = ops::rope_inv_freq(s.dim, llama3_config());
  DeviceBuffer<T> dqkv(stored);
  DeviceBuffer<std::int32_t> dpos(positions);
  DeviceBuffer<double> dfreq(inv_freq);
  if (forward)
    device::rope_forward(dqkv.data(), dqkv.data(), s.layout(), dpos.data(), dfreq.data(), nullptr);
  else
    device::rope_backward(dqkv.data(), dqkv.data(), s.layout(), dpos.data(), dfreq.data(), nullptr);
  const std::vector<float> got = as_f32(dqkv.download());
  const std::vector<float> input = rotated_heads(s, qkv);
  EXPECT_TRUE(rotation_close(s, rotated_heads(s, got), reference_rope(s, input, positions, forward), input,
                             kF32Relative, output_relative))
      << s.batch << "x" << s.seq << "x" << s.rotated() << "x" << s.dim << (forward ? " forward" : " backward");
  for (std::int64_t token = 0; token < s.batch * s.seq; ++token)
    for (std::int64_t e = s.rotated() * s.dim; e < s.width(); ++e)
      ASSERT_EQ(got[static_cast<std::size_t>(token * s.width() + e)], qkv[static_cast<std::size_t>(token * s.width() + e)]);
}

// f32: cos/sin rounded to f32 and a two-term fp32 dot: a few ulp of the pair's magnitude.
TEST(CudaRope, F32ForwardAndBackwardMatchTheCpuOpOnQkvInPlace) {
  for (const Shape& s : kShapes) {
    check_in_place<float>(s, true, 0.0);
    check_in_place<float>(s, false, 0.0);
  }
}

// bf16: the f32 result above, rounded once to bf16 (2^-8 of the output).
TEST(CudaRope, Bf16WithinOneRoundingOfTheFp32Rotation) {
  for (const Shape& s : kShapes) {
    check_in_place<__nv_bfloat16>(s, true, 1.0 / 256.0);
    check_in_place<__nv_bfloat16>(s, false, 1.0 / 256.0);
  }
}

TEST(CudaRope, OutOfPlaceLeavesTheInputAndBackwardUndoesForward) {
  const Shape s{2, 4, 2, 1, 16};
  const auto qkv = random_values(s.qkv_size(), 43);
  const auto positions = random_positions(s, 44);
  DeviceBuffer<float> dx(qkv), dy(std::vector<float>(qkv.size(), 0.0f)), dback(std::vector<float>(qkv.size(), 0.0f));
  DeviceBuffer<std::int32_t> dpos(positions);
  DeviceBuffer<double> dfreq(ops::rope_inv_freq(s.dim, llama3_config()));
  device::rope_forward(dy.data(), dx.data(), s.layout(), dpos.data(), dfreq.data(), nullptr);
  device::rope_backward(dback.data(), dy.data(), s.layout(), dpos.data(), dfreq.data(), nullptr);
  EXPECT_EQ(dx.download(), qkv);
  const auto y = dy.download();
  EXPECT_NE(rotated_heads(s, y), rotated_heads(s, qkv));
  EXPECT_TRUE(all_close(rotated_heads(s, dback.download()), to_f64(rotated_heads(s, qkv)), 1e-6, 1e-6));
}

TEST(CudaRope, NaNStaysInItsPair) {
  const Shape s{1, 2, 1, 0, 8};
  auto x = random_values(s.qkv_size(), 45);
  x[2] = std::numeric_limits<float>::quiet_NaN();  // token 0, pair (2, 6)
  DeviceBuffer<float> dx(x);
  DeviceBuffer<std::int32_t> dpos(std::vector<std::int32_t>{3, 7});
  DeviceBuffer<double> dfreq(ops::rope_inv_freq(s.dim, {}));
  device::rope_forward(dx.data(), dx.data(), s.layout(), dpos.data(), dfreq.data(), nullptr);
  const auto y = dx.download();
  for (std::size_t e = 0; e < y.size(); ++e) EXPECT_EQ(std::isnan(y[e]), e == 2 || e == 6) << e;
}

TEST(CudaRope, BadLayoutsAreErrors) {
  DeviceBuffer<float> dx(64);
  DeviceBuffer<std::int32_t> dpos(std::vector<std::int32_t>{0, 1});
  DeviceBuffer<double> dfreq(std::vector<double>(4, 1.0));
  const device::RopeLayout good{1, 2, 2, 8, 32, 16, 8};
  device::rope_forward(dx.data(), dx.data(), good, dpos.data(), dfreq.data(), nullptr);
  auto odd = good;
  odd.head_dim = 7;
  EXPECT_THROW(device::rope_forward(dx.data(), dx.data(), odd, dpos.data(), dfreq.data(), nullptr), kiln::Error);
  auto overlapping = good;
  overlapping.seq_stride = 8;
  EXPECT_THROW(device::rope_forward(dx.data(), dx.data(), overlapping, dpos.data(), dfreq.data(), nullptr), kiln::Error);
  auto negative = good;
  negative.seq = -1;
  EXPECT_THROW(device::rope_backward(dx.data(), dx.data(), negative, dpos.data(), dfreq.data(), nullptr), kiln::Error);
  EXPECT_THROW(device::rope_backward(dx.data(), dx.data(), good, dpos.data(), nullptr, nullptr), kiln::Error);
}

TEST(CudaRope, SameBitsUnderAnotherSchedule) {
  const Shape s{2, 40, 3, 1, 24};
  const auto qkv = to_bf16(random_values(s.qkv_size(), 46));
  const auto positions = random_positions(s, 47);
  const auto run = [&] {
    DeviceBuffer<__nv_bfloat16> dqkv(qkv);
    DeviceBuffer<std::int32_t> dpos(positions);
    DeviceBuffer<double> dfreq(ops::rope_inv_freq(s.dim, llama3_config()));
    device::rope_forward(dqkv.data(), dqkv.data(), s.layout(), dpos.data(), dfreq.data(), nullptr);
    return dqkv.download();
  };
  expect_same_bits_under_two_schedules(run, 5, 123456789);
}

}  // namespace
}  // namespace kiln::cuda_test
