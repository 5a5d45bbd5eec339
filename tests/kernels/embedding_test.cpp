// Embedding lookup and deterministic scatter-add backward, including vocab-parallel shards.
#include <gtest/gtest.h>
#include <omp.h>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::random_tensor;
using testing::to_vector;

TEST(KernelEmbedding, ForwardGathersRowsAndAddsPositions) {
  const int V = 11, C = 6, B = 2, T = 4;
  auto table = random_tensor(DType::F64, {V, C}, 1);
  auto positions_table = random_tensor(DType::F64, {T, C}, 2);
  std::vector<std::uint32_t> ids = {3, 0, 10, 3, 7, 7, 1, 2};
  std::vector<std::int32_t> positions = {0, 1, 2, 3, 0, 1, 2, 3};
  OwnedTensor out(DType::F64, {B, T, C});
  ops::embedding_forward(out, Tensor::of(ids.data(), {B, T}), table);
  ops::embedding_forward(out, Tensor::of(positions.data(), {B, T}), positions_table,
                         ops::Accumulate::Yes);
  const auto o = to_vector(out), tv = to_vector(table), pv = to_vector(positions_table);
  for (int i = 0; i < B * T; ++i)
    for (int c = 0; c < C; ++c)
      EXPECT_EQ(o[i * C + c], tv[ids[i] * C + c] + pv[positions[i] * C + c]);
}

TEST(KernelEmbedding, BackwardScatterAddsRepeatedIdsDeterministically) {
  const int V = 50, C = 33, N = 400;
  auto dout = random_tensor(DType::F32, {N, C}, 11);
  std::vector<std::int64_t> ids(N);
  Rng rng(12);
  for (auto& id : ids) id = static_cast<std::int64_t>(rng.below(7)) * 7;  // heavy repeats
  // Naive reference in double.
  std::vector<double> expected(V * C, 0.0);
  const auto d = to_vector(dout);
  for (int i = 0; i < N; ++i)
    for (int c = 0; c < C; ++c) expected[ids[i] * C + c] += d[i * C + c];
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    auto dtable = random_tensor(DType::F32, {V, C}, 13);  // accumulates onto existing values
    const auto base = to_vector(dtable);
    ops::embedding_backward(dtable, dout, Tensor::of(ids.data(), {N}));
    auto result = to_vector(dtable);
    for (std::size_t i = 0; i < result.size(); ++i)
      EXPECT_NEAR(result[i] - base[i], expected[i], 1e-4);
    return result;
  };
  const int threads = omp_get_max_threads();
  const auto one = run(1), many = run(std::max(2, threads));
  omp_set_num_threads(threads);
  EXPECT_EQ(one, many) << "the backward must not depend on the thread count";
}

TEST(KernelEmbedding, RejectsOutOfRangeIds) {
  OwnedTensor table(DType::F32, {4, 2}), out(DType::F32, {2, 2});
  std::vector<std::int32_t> ids = {1, 4};
  EXPECT_THROW(ops::embedding_forward(out, Tensor::of(ids.data(), {2}), table), Error);
  OwnedTensor bad_dtype(DType::F32, {2});
  EXPECT_THROW(ops::embedding_forward(out, bad_dtype, table), Error);
}

TEST(KernelEmbedding, VocabParallelShardsSumToTheFullLookup) {
  const int V = 10, C = 4, N = 6;
  auto table = random_tensor(DType::F64, {V, C}, 21);
  std::vector<std::uint16_t> ids = {0, 9, 4, 5, 5, 2};
  const Tensor id_tensor = Tensor::of(ids.data(), {N});
  OwnedTensor full(DType::F64, {N, C}), part0(DType::F64, {N, C}), part1(DType::F64, {N, C});
  ops::embedding_forward(full, id_tensor, table);
  ops::embedding_forward_vocab_parallel(part0, id_tensor, table.tensor().narrow(0, 0, 5), 0);
  ops::embedding_forward_vocab_parallel(part1, id_tensor, table.tensor().narrow(0, 5, 5), 5);
  ops::add_to(part0, part1);  // what the tp all-reduce does
  EXPECT_EQ(to_vector(part0), to_vector(full));

  auto dout = random_tensor(DType::F64, {N, C}, 22);
  OwnedTensor dfull(DType::F64, {V, C}), dshard(DType::F64, {5, C});
  ops::embedding_backward(dfull, dout, id_tensor);
  ops::embedding_backward_vocab_parallel(dshard, dout, id_tensor, 5);
  const auto f = to_vector(dfull), s = to_vector(dshard);
  for (int i = 0; i < 5 * C; ++i) EXPECT_EQ(s[i], f[5 * C + i]);
}

}  // namespace
}  // namespace kiln
