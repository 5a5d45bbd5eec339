// kernels/cuda/embedding.cu under the emulated device against kiln::ops::embedding_*.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cuda/embedding.hpp"
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

struct Case {
  std::int64_t rows, channels, table_rows, first_id, vocab;  // ids drawn from [0, vocab)
};
// One row; channels off the pack widths (4 f32, 8 bf16); a vocab-parallel shard (ids outside
// [first_id, first_id + table_rows) give zero rows); more rows than one forward grid (1056).
const Case kCases[] = {{1, 1, 3, 0, 3}, {5, 37, 11, 0, 11}, {7, 64, 20, 10, 40}, {33, 100, 6, 0, 6},
                       {1056 + 5, 8, 50, 0, 50}};

std::vector<std::int32_t> random_ids(std::int64_t count, std::int64_t vocab, std::uint32_t seed) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(count));
  const std::vector<float> u = random_values(ids.size(), seed, 0.0f, static_cast<float>(vocab));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::min<std::int32_t>(static_cast<std::int32_t>(u[i]), static_cast<std::int32_t>(vocab - 1));
  return ids;
}

OwnedTensor f64_tensor(const std::vector<float>& values, Shape shape) {
  OwnedTensor t(DType::F64, shape);
  for (std::size_t i = 0; i < values.size(); ++i) t.data<double>()[i] = values[i];
  return t;
}
OwnedTensor id_tensor(const std::vector<std::int32_t>& ids) {
  OwnedTensor t(DType::I32, {static_cast<std::int64_t>(ids.size())});
  std::memcpy(t.data<std::int32_t>(), ids.data(), ids.size() * sizeof(std::int32_t));
  return t;
}

// ops in f64: the shard's rows (zeros outside), then learned positions added when given.
std::vector<double> reference_forward(const Case& k, const std::vector<std::int32_t>& ids, const std::vector<float>& table,
                                      const std::vector<std::int32_t>* position_ids, const std::vector<float>* positions) {
  OwnedTensor out(DType::F64, {k.rows, k.channels});
  ops::embedding_forward_vocab_parallel(out, id_tensor(ids), f64_tensor(table, {k.table_rows, k.channels}), k.first_id);
  if (positions)
    ops::embedding_forward(out, id_tensor(*position_ids), f64_tensor(*positions, {k.rows, k.channels}),
                           ops::Accumulate::Yes);
  return values_of(out);
}

std::vector<double> reference_backward(const Case& k, const std::vector<float>& dtable, const std::vector<float>& dout,
                                       const std::vector<std::int32_t>& ids) {
  OwnedTensor table = f64_tensor(dtable, {k.table_rows, k.channels});
  ops::embedding_backward_vocab_parallel(table, f64_tensor(dout, {k.rows, k.channels}), id_tensor(ids), k.first_id);
  return values_of(table);
}

std::size_t table_size(const Case& k) { return static_cast<std::size_t>(k.table_rows * k.channels); }
std::size_t out_size(const Case& k) { return static_cast<std::size_t>(k.rows * k.channels); }

TEST(CudaEmbedding, F32ForwardGathersTheShardsRowsAndZerosTheRest) {
  for (const Case& k : kCases) {
    const auto ids = random_ids(k.rows, k.vocab, 21);
    const auto table = random_values(table_size(k), 22);
    DeviceBuffer<std::int32_t> did(ids);
    DeviceBuffer<float> dtable(table), dout(out_size(k));
    dout.fill_bytes(0xFF);  // NaN: every element must be written
    device::embedding_forward(dout.data(), did.data(), dtable.data(), k.table_rows, k.first_id, k.rows, k.channels, {},
                              nullptr);
    EXPECT_TRUE(all_close(dout.download(), reference_forward(k, ids, table, nullptr, nullptr), 0.0, 0.0))
        << k.rows << "x" << k.channels;
  }
}

TEST(CudaEmbedding, TokenPlusPositionRoundsOnceInBf16AndIsExactInF32) {
  for (const Case& k : kCases) {
    if (k.first_id != 0) continue;  // GPT-2's learned positions: a full table
    const auto ids = random_ids(k.rows, k.vocab, 23), position_ids = random_ids(k.rows, k.rows, 24);
    const auto table = random_values(table_size(k), 25), positions = random_values(out_size(k), 26);
    DeviceBuffer<std::int32_t> did(ids), dpos(position_ids);
    DeviceBuffer<float> dtable(table), dpositions(positions), dout(out_size(k));
    device::embedding_forward(dout.data(), did.data(), dtable.data(), k.table_rows, 0, k.rows, k.channels,
                              {dpos.data(), dpositions.data(), k.rows}, nullptr);
    // fp32 sum of two f32 values: one rounding, within 2^-24 of the f64 sum.
    EXPECT_TRUE(all_close(dout.download(), reference_forward(k, ids, table, &position_ids, &positions), kF32Relative));

    const auto table16 = to_bf16(table), positions16 = to_bf16(positions);
    DeviceBuffer<__nv_bfloat16> btable(table16), bpositions(positions16), bout(out_size(k));
    device::embedding_forward(bout.data(), did.data(), btable.data(), k.table_rows, 0, k.rows, k.channels,
                              {dpos.data(), bpositions.data(), k.rows}, nullptr);
    const std::vector<float> rounded_positions = to_f32(positions16);
    const auto want = reference_forward(k, ids, to_f32(table16), &position_ids, &rounded_positions);
    EXPECT_TRUE(all_close(to_f32(bout.download()), want, kBF16Relative)) << k.rows << "x" << k.channels;
  }
}

TEST(CudaEmbedding, BackwardEqualsTheCpuOpBitwiseInF32AndMatchesF64) {
  for (const Case& k : kCases) {
    const auto ids = random_ids(k.rows, k.vocab, 27);
    // Positive values: sums without cancellation, so 1e-5 relative holds for any repeat count.
    const auto initial = random_values(table_size(k), 28, 0.1f, 1.0f), dout = random_values(out_size(k), 29, 0.1f, 1.0f);
    DeviceBuffer<std::int32_t> did(ids);
    DeviceBuffer<float> dtable(initial), ddout(dout);
    device::embedding_backward(dtable.data(), k.table_rows, ddout.data(), did.data(), k.first_id, k.rows, k.channels,
                               nullptr);
    const std::vector<float> got = dtable.download();
    EXPECT_TRUE(all_close(got, reference_backward(k, initial, dout, ids), kF32Relative)) << k.rows << "x" << k.channels;

    OwnedTensor cpu(DType::F32, {k.table_rows, k.channels}), cpu_dout(DType::F32, {k.rows, k.channels});
    std::memcpy(cpu.data<float>(), initial.data(), initial.size() * sizeof(float));
    std::memcpy(cpu_dout.data<float>(), dout.data(), dout.size() * sizeof(float));
    ops::embedding_backward_vocab_parallel(cpu, cpu_dout, id_tensor(ids), k.first_id);
    EXPECT_EQ(std::memcmp(got.data(), cpu.data<float>(), got.size() * sizeof(float)), 0) << k.rows << "x" << k.channels;

    // bf16 dout, f32 table gradient: exact sums of the bf16 values in fp32 (no output rounding).
    const auto dout16 = to_bf16(dout);
    DeviceBuffer<__nv_bfloat16> bdout(dout16);
    dtable.upload(initial);
    device::embedding_backward(dtable.data(), k.table_rows, bdout.data(), did.data(), k.first_id, k.rows, k.channels,
                               nullptr);
    EXPECT_TRUE(all_close(dtable.download(), reference_backward(k, initial, to_f32(dout16), ids), kF32Relative));
  }
}

TEST(CudaEmbedding, NaNPropagatesBothWays) {
  const Case k{4, 16, 3, 0, 3};
  const std::vector<std::int32_t> ids = {0, 2, 1, 2};
  auto table = random_values(table_size(k), 30);
  table[2 * 16 + 5] = std::numeric_limits<float>::quiet_NaN();
  DeviceBuffer<std::int32_t> did(ids);
  DeviceBuffer<float> dtable(table), dout(out_size(k));
  device::embedding_forward(dout.data(), did.data(), dtable.data(), 3, 0, 4, 16, {}, nullptr);
  const auto out = dout.download();
  EXPECT_TRUE(std::isnan(out[1 * 16 + 5]) && std::isnan(out[3 * 16 + 5]));
  EXPECT_FALSE(std::isnan(out[0 * 16 + 5]) || std::isnan(out[2 * 16 + 5]));

  auto grad = random_values(out_size(k), 31);
  grad[2 * 16 + 7] = std::numeric_limits<float>::quiet_NaN();  // token 2 has id 1
  DeviceBuffer<float> dgrad(grad), dtable_grad(std::vector<float>(table_size(k), 0.0f));
  device::embedding_backward(dtable_grad.data(), 3, dgrad.data(), did.data(), 0, 4, 16, nullptr);
  const auto g = dtable_grad.download();
  EXPECT_TRUE(std::isnan(g[1 * 16 + 7]));
  EXPECT_FALSE(std::isnan(g[0 * 16 + 7]) || std::isnan(g[2 * 16 + 7]));
}

TEST(CudaEmbedding, BadArgumentsAreErrors) {
  DeviceBuffer<std::int32_t> did(std::vector<std::int32_t>{0, 1});
  DeviceBuffer<float> dtable(8), dout(8);
  EXPECT_THROW(device::embedding_forward(dout.data(), did.data(), dtable.data(), 0, 0, 2, 4, {}, nullptr), kiln::Error);
  EXPECT_THROW(device::embedding_forward(dout.data(), did.data(), dtable.data(), 2, 0, 2, 0, {}, nullptr), kiln::Error);
  EXPECT_THROW(device::embedding_forward(dout.data(), did.data(), dtable.data(), 2, 0, -1, 4, {}, nullptr), kiln::Error);
  EXPECT_THROW(device::embedding_forward(dout.data(), did.data(), dtable.data(), 2, 0, 2, 4, {did.data(), nullptr, 2},
                                         nullptr),
               kiln::Error);
  EXPECT_THROW(device::embedding_forward(dout.data(), nullptr, dtable.data(), 2, 0, 2, 4, {}, nullptr), kiln::Error);
  EXPECT_THROW(device::embedding_backward(dtable.data(), 2, dout.data(), did.data(), 0, 2, -4, nullptr), kiln::Error);
  EXPECT_THROW(device::embedding_backward(nullptr, 2, dout.data(), did.data(), 0, 2, 4, nullptr), kiln::Error);
}

TEST(CudaEmbedding, BackwardIsBitwiseTheSameUnderAnotherSchedule) {
  const Case k{300, 40, 7, 0, 7};  // heavy repeats: ~43 tokens per table row
  const auto ids = random_ids(k.rows, k.vocab, 32);
  const auto dout16 = to_bf16(random_values(out_size(k), 33));
  expect_same_bits_under_two_schedules([&] {
    DeviceBuffer<std::int32_t> did(ids);
    DeviceBuffer<__nv_bfloat16> ddout(dout16);
    DeviceBuffer<float> dtable(std::vector<float>(table_size(k), 0.5f));
    device::embedding_backward(dtable.data(), k.table_rows, ddout.data(), did.data(), 0, k.rows, k.channels, nullptr);
    return dtable.download();
  });
}

}  // namespace
}  // namespace kiln::cuda_test
