// kernels/cuda/cross_entropy.cu under the emulated device against kiln::ops::cross_entropy_*.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <bit>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/cross_entropy.hpp"
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

struct LogitShape {
  std::int64_t rows, vocab, valid;
  std::size_t size() const { return static_cast<std::size_t>(rows * vocab); }
};
// One row and one column; vocab off the pack widths with padding; packed rows (64, 1024 with
// 1000 valid: a scalar tail after the packs); more rows (1061) than one grid (1056 blocks).
const LogitShape kShapes[] = {{1, 1, 1}, {3, 37, 30}, {5, 64, 64}, {4, 1024, 1000}, {1061, 8, 5}};

constexpr float kGradScale = 0.125f;

struct Batch {
  std::vector<float> logits;
  std::vector<std::int32_t> targets;
  std::vector<std::uint8_t> mask;  // every third row masked, with a target that is out of range
};
Batch random_batch(const LogitShape& s, std::uint32_t seed) {
  Batch b{random_values(s.size(), seed), {}, {}};
  const auto u = random_values(static_cast<std::size_t>(s.rows), seed + 1, 0.0f, static_cast<float>(s.valid));
  for (std::int64_t r = 0; r < s.rows; ++r) {
    const bool counted = r % 3 != 1;
    b.mask.push_back(counted ? 1 : 0);
    b.targets.push_back(counted ? std::min(static_cast<std::int32_t>(u[static_cast<std::size_t>(r)]),
                                           static_cast<std::int32_t>(s.valid - 1))
                                : -12345);
  }
  return b;
}

OwnedTensor f64_tensor(const std::vector<float>& values, kiln::Shape shape) {
  OwnedTensor t(DType::F64, shape);
  for (std::size_t i = 0; i < values.size(); ++i) t.data<double>()[i] = values[i];
  return t;
}
template <class Index>
OwnedTensor index_tensor(const std::vector<Index>& values, DType dtype) {
  OwnedTensor t(dtype, {static_cast<std::int64_t>(values.size())});
  std::memcpy(t.data<Index>(), values.data(), values.size() * sizeof(Index));
  return t;
}

struct Forward {
  std::vector<double> losses, lse;
  double loss_sum, count;
};
// ops in f64 on the (f32-exact) logits the kernel sees.
Forward reference_forward(const LogitShape& s, const std::vector<float>& logits, const Batch& b) {
  OwnedTensor losses(DType::F64, {s.rows}), lse(DType::F64, {s.rows}), total(DType::F64, {2});
  ops::cross_entropy_forward(losses, lse, total, f64_tensor(logits, {s.rows, s.vocab}),
                             index_tensor(b.targets, DType::I32), index_tensor(b.mask, DType::U8), s.valid);
  return {values_of(losses), values_of(lse), total.data<double>()[0], total.data<double>()[1]};
}
std::vector<double> reference_backward(const LogitShape& s, const std::vector<float>& logits, const Batch& b,
                                       const std::vector<double>& lse) {
  OwnedTensor dlogits(DType::F64, {s.rows, s.vocab}), tlse(DType::F64, {s.rows});
  std::memcpy(tlse.data<double>(), lse.data(), lse.size() * sizeof(double));
  ops::cross_entropy_backward(dlogits, f64_tensor(logits, {s.rows, s.vocab}), index_tensor(b.targets, DType::I32),
                              tlse, index_tensor(b.mask, DType::U8), s.valid, kGradScale);
  return values_of(dlogits);
}

template <class T>
std::vector<T> stored(const std::vector<float>& values) {
  if constexpr (std::is_same_v<T, float>) return values;
  else return to_bf16(values);
}
template <class T>
std::vector<float> widened(const std::vector<T>& values) {
  if constexpr (std::is_same_v<T, float>) return values;
  else return to_f32(values);
}

// Forward then in-place backward on the device, against the CPU op on the same logits.
//  - losses, lse: f32 in both storages; per-thread sums of at most a few hundred exps merged
//    in a tree: well inside 1e-5 relative (losses of random logits are ~log(valid) > 0.1).
//  - loss_sum: f64 sum of those f32 losses, so the same relative bound.
//  - dlogits: f32 within 1e-5 relative (expf error plus the lse error in the exponent);
//    bf16 within one rounding of that (2^-8 + 1e-5).
template <class T>
void check_forward_and_backward(const LogitShape& s, double dlogits_relative) {
  const Batch b = random_batch(s, 61);
  const std::vector<T> logits = stored<T>(b.logits);
  const std::vector<float> seen = widened(logits);
  DeviceBuffer<T> dlogits(logits);
  DeviceBuffer<std::int32_t> dtargets(b.targets);
  DeviceBuffer<std::uint8_t> dmask(b.mask);
  DeviceBuffer<float> losses(static_cast<std::size_t>(s.rows)), lse(static_cast<std::size_t>(s.rows));
  DeviceBuffer<double> total(2);
  losses.fill_bytes(0xFF), lse.fill_bytes(0xFF);
  device::cross_entropy_forward(losses.data(), lse.data(), total.data(), dlogits.data(), dtargets.data(), dmask.data(),
                                s.rows, s.vocab, s.valid, nullptr);
  const Forward want = reference_forward(s, seen, b);
  const std::string where = std::to_string(s.rows) + "x" + std::to_string(s.vocab) + "/" + std::to_string(s.valid);
  EXPECT_TRUE(all_close(losses.download(), want.losses, kF32Relative)) << where;
  EXPECT_TRUE(all_close(lse.download(), want.lse, kF32Relative)) << where;
  const std::vector<double> got_total = total.download();
  EXPECT_NEAR(got_total[0], want.loss_sum, kF32Relative * std::abs(want.loss_sum)) << where;
  EXPECT_EQ(got_total[1], want.count) << where;

  device::cross_entropy_backward(dlogits.data(), dlogits.data(), dtargets.data(), lse.data(), dmask.data(), s.rows,
                                 s.vocab, s.valid, 0, kGradScale, nullptr);
  EXPECT_TRUE(all_close(widened(dlogits.download()), reference_backward(s, seen, b, want.lse), dlogits_relative, 1e-12))
      << where;
}

TEST(CudaCrossEntropy, F32ForwardAndInPlaceBackwardMatchTheCpuOp) {
  for (const LogitShape& s : kShapes) check_forward_and_backward<float>(s, kF32Relative);
}

TEST(CudaCrossEntropy, Bf16LogitsGiveF32StatisticsAndOnceRoundedGradients) {
  for (const LogitShape& s : kShapes) check_forward_and_backward<__nv_bfloat16>(s, kBF16Relative);
}

TEST(CudaCrossEntropy, WithoutAMaskEveryRowCounts) {
  const LogitShape s{4, 16, 12};
  Batch b = random_batch(s, 62);
  for (auto& t : b.targets) t = t < 0 ? 3 : t;
  DeviceBuffer<float> dlogits(b.logits), losses(4), lse(4);
  DeviceBuffer<std::int32_t> dtargets(b.targets);
  DeviceBuffer<double> total(2);
  device::cross_entropy_forward(losses.data(), lse.data(), total.data(), dlogits.data(), dtargets.data(), nullptr, 4,
                                16, 12, nullptr);
  b.mask.assign(4, 1);
  const Forward want = reference_forward(s, b.logits, b);
  EXPECT_TRUE(all_close(losses.download(), want.losses, kF32Relative));
  EXPECT_EQ(total.download()[1], 4.0);
}

// Two shards of a vocabulary of 2 x 40 columns, the second with 30 valid (10 padding): the
// statistics halves, the host standing in for the all-reduces, reproduce the serial op.
template <class T>
void check_vocab_parallel() {
  const std::int64_t rows = 6, local = 40, valid_last = 30;
  const LogitShape whole{rows, 2 * local, local + valid_last};
  const Batch b = random_batch(whole, 63);
  const std::vector<float> seen = widened(stored<T>(b.logits));
  std::vector<float> shard[2];
  for (std::int64_t r = 0; r < rows; ++r)
    for (int k = 0; k < 2; ++k)
      shard[k].insert(shard[k].end(), seen.begin() + r * 2 * local + k * local, seen.begin() + r * 2 * local + (k + 1) * local);
  const std::int64_t valid[2] = {local, valid_last}, first_id[2] = {0, local};
  DeviceBuffer<std::int32_t> dtargets(b.targets);
  DeviceBuffer<std::uint8_t> dmask(b.mask);
  std::vector<float> row_max(rows, -INFINITY), sum_exp(rows, 0.0f), target_logit(rows, 0.0f);
  std::vector<std::unique_ptr<DeviceBuffer<T>>> dshard;
  for (int k = 0; k < 2; ++k) {
    dshard.push_back(std::make_unique<DeviceBuffer<T>>(stored<T>(shard[k])));
    DeviceBuffer<float> local_max(rows);
    device::cross_entropy_local_max(local_max.data(), dshard[k]->data(), rows, local, valid[k], nullptr);
    const auto m = local_max.download();
    OwnedTensor want_max(DType::F64, {rows});
    ops::cross_entropy_local_max(want_max, f64_tensor(shard[k], {rows, local}), valid[k]);
    EXPECT_TRUE(all_close(m, values_of(want_max), 0.0, 0.0)) << "shard " << k;
    for (std::int64_t r = 0; r < rows; ++r) row_max[r] = std::max(row_max[r], m[r]);  // all-reduce MAX
  }
  DeviceBuffer<float> dmax(row_max);
  for (int k = 0; k < 2; ++k) {
    DeviceBuffer<float> dsum(rows), dtarget(rows);
    device::cross_entropy_local_sums(dsum.data(), dtarget.data(), dshard[k]->data(), dtargets.data(), dmax.data(), rows,
                                     local, valid[k], first_id[k], nullptr);
    const auto sums = dsum.download(), picked = dtarget.download();
    for (std::int64_t r = 0; r < rows; ++r) sum_exp[r] += sums[r], target_logit[r] += picked[r];  // all-reduce SUM
  }
  DeviceBuffer<float> dsum(sum_exp), dtarget(target_logit), losses(rows), lse(rows);
  DeviceBuffer<double> total(2);
  device::cross_entropy_finish(losses.data(), lse.data(), total.data(), dmax.data(), dsum.data(), dtarget.data(),
                               dmask.data(), rows, nullptr);
  const Forward want = reference_forward(whole, seen, b);
  EXPECT_TRUE(all_close(losses.download(), want.losses, kF32Relative));
  EXPECT_TRUE(all_close(lse.download(), want.lse, kF32Relative));
  EXPECT_NEAR(total.download()[0], want.loss_sum, kF32Relative * std::abs(want.loss_sum));

  const std::vector<double> want_grad = reference_backward(whole, seen, b, want.lse);
  for (int k = 0; k < 2; ++k) {
    device::cross_entropy_backward(dshard[k]->data(), dshard[k]->data(), dtargets.data(), lse.data(), dmask.data(),
                                   rows, local, valid[k], first_id[k], kGradScale, nullptr);
    std::vector<double> want_shard;
    for (std::int64_t r = 0; r < rows; ++r)
      want_shard.insert(want_shard.end(), want_grad.begin() + r * 2 * local + k * local,
                        want_grad.begin() + r * 2 * local + (k + 1) * local);
    EXPECT_TRUE(all_close(widened(dshard[k]->download()), want_shard,
                          std::is_same_v<T, float> ? kF32Relative : kBF16Relative, 1e-12))
        << "shard " << k;
  }
}

TEST(CudaCrossEntropy, VocabParallelHalvesReproduceTheSerialOp) {
  check_vocab_parallel<float>();
  check_vocab_parallel<__nv_bfloat16>();
}

TEST(CudaCrossEntropy, ANaNLogitPoisonsOnlyItsRow) {
  const LogitShape s{3, 16, 16};
  Batch b = random_batch(s, 64);
  b.mask.assign(3, 1);
  b.targets = {1, 2, 3};
  b.logits[16 + 9] = std::numeric_limits<float>::quiet_NaN();
  DeviceBuffer<float> dlogits(b.logits), losses(3), lse(3);
  DeviceBuffer<std::int32_t> dtargets(b.targets);
  DeviceBuffer<double> total(2);
  device::cross_entropy_forward(losses.data(), lse.data(), total.data(), dlogits.data(), dtargets.data(), nullptr, 3,
                                16, 16, nullptr);
  const auto l = losses.download();
  EXPECT_FALSE(std::isnan(l[0]) || std::isnan(l[2]));
  EXPECT_TRUE(std::isnan(l[1]));
  EXPECT_TRUE(std::isnan(total.download()[0]));
  device::cross_entropy_backward(dlogits.data(), dlogits.data(), dtargets.data(), lse.data(), nullptr, 3, 16, 16, 0,
                                 1.0f, nullptr);
  const auto g = dlogits.download();
  for (int c = 0; c < 16; ++c) EXPECT_TRUE(std::isnan(g[16 + c]) && !std::isnan(g[c]) && !std::isnan(g[32 + c])) << c;
}

TEST(CudaCrossEntropy, BadArgumentsAreErrors) {
  DeviceBuffer<float> logits(16), losses(2), lse(2), stats(2);
  DeviceBuffer<std::int32_t> targets(std::vector<std::int32_t>{0, 1});
  DeviceBuffer<double> total(2);
  EXPECT_THROW(device::cross_entropy_forward(losses.data(), lse.data(), total.data(), logits.data(), targets.data(),
                                             nullptr, 2, 8, 0, nullptr),
               kiln::Error);
  EXPECT_THROW(device::cross_entropy_forward(losses.data(), lse.data(), total.data(), logits.data(), targets.data(),
                                             nullptr, 2, 8, 9, nullptr),
               kiln::Error);
  EXPECT_THROW(device::cross_entropy_forward(nullptr, lse.data(), total.data(), logits.data(), targets.data(), nullptr,
                                             2, 8, 8, nullptr),
               kiln::Error);
  EXPECT_THROW(device::cross_entropy_backward(logits.data(), logits.data(), targets.data(), lse.data(), nullptr, -1, 8,
                                              8, 0, 1.0f, nullptr),
               kiln::Error);
  EXPECT_THROW(device::cross_entropy_local_max(stats.data(), logits.data(), 2, 8, 9, nullptr), kiln::Error);
  EXPECT_NO_THROW(device::cross_entropy_local_max(stats.data(), logits.data(), 2, 8, 0, nullptr));  // an all-padding shard
  EXPECT_EQ(stats.download()[0], -INFINITY);
  EXPECT_THROW(device::cross_entropy_finish(losses.data(), nullptr, total.data(), stats.data(), stats.data(),
                                            stats.data(), nullptr, 2, nullptr),
               kiln::Error);
}

TEST(CudaCrossEntropy, SameBitsUnderAnotherSchedule) {
  const LogitShape s{40, 1024, 1000};
  const Batch b = random_batch(s, 65);
  const auto logits = to_bf16(b.logits);
  const auto run = [&] {
    DeviceBuffer<__nv_bfloat16> dlogits(logits);
    DeviceBuffer<std::int32_t> dtargets(b.targets);
    DeviceBuffer<std::uint8_t> dmask(b.mask);
    DeviceBuffer<float> losses(40), lse(40);
    DeviceBuffer<double> total(2);
    device::cross_entropy_forward(losses.data(), lse.data(), total.data(), dlogits.data(), dtargets.data(),
                                  dmask.data(), 40, 1024, 1000, nullptr);
    device::cross_entropy_backward(dlogits.data(), dlogits.data(), dtargets.data(), lse.data(), dmask.data(), 40, 1024,
                                   1000, 0, kGradScale, nullptr);
    std::vector<std::uint16_t> bits;
    for (const auto value : dlogits.download()) bits.push_back(bits_of(value));
    for (const float value : losses.download()) bits.push_back(static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(value))),
        bits.push_back(static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(value) >> 16));
    const double sum = total.download()[0];
    std::uint64_t sum_bits = std::bit_cast<std::uint64_t>(sum);
    for (int i = 0; i < 4; ++i) bits.push_back(static_cast<std::uint16_t>(sum_bits >> (16 * i)));
    return bits;
  };
  expect_same_bits_under_two_schedules(run, 3, 4242);
}

}  // namespace
}  // namespace kiln::cuda_test
