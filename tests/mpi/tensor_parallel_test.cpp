// The tensor-parallel layers (parallel/tensor_parallel.hpp) on a tp = 2 communicator against
// the serial op on the full tensors, forward and backward, under mpirun with 2 or 4 ranks
// (pairs of ranks form the tp groups); skipped in a single process. F64, so the only
// difference from the serial op is the order of the tp sums. The sequence-parallel variants
// take and give this rank's chunk of the sequence where the serial op sees all of it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "parallel/communicator.hpp"
#include "parallel/mpi_environment.hpp"
#include "parallel/tensor_parallel.hpp"
#include "tests/model/model_testing.hpp"

namespace kiln::parallel {
namespace {

using model::testing::from_vector;
using model::testing::to_vector;

constexpr int kTp = 2;

Communicator& world() {
  static const std::unique_ptr<Communicator> communicator = world_communicator();
  return *communicator;
}

// This rank's tp group of two consecutive ranks, or null when the world cannot form them.
std::unique_ptr<Communicator> tp_pair() {
  if (world().size() < kTp || world().size() % kTp != 0) return nullptr;
  return split_communicator(world(), world().rank() / kTp, world().rank() % kTp, "tp");
}

OwnedTensor random_f64(Shape shape, std::uint64_t seed) {
  OwnedTensor t(DType::F64, shape);
  Rng rng(seed);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = rng.uniform() * 2.0 - 1.0;
  return t;
}

OwnedTensor zeros_f64(Shape shape) {
  OwnedTensor t(DType::F64, shape);
  ops::zero(t);
  return t;
}

// A contiguous copy of a (strided) view: this rank's slice of a full tensor.
OwnedTensor slice(const Tensor& full, int dim, std::int64_t first, std::int64_t count) {
  const Tensor part = full.narrow(dim, first, count);
  OwnedTensor copy(full.dtype, part.shape);
  ops::copy(copy, part);
  return copy;
}

void expect_near(const Tensor& got, const Tensor& want, const char* what) {
  ASSERT_EQ(got.shape, want.shape) << what;
  const std::vector<double> g = to_vector(got), w = to_vector(want);
  for (std::size_t i = 0; i < w.size(); ++i)
    EXPECT_NEAR(g[i], w[i], 1e-12 * (1.0 + std::fabs(w[i]))) << what << " element " << i;
}

OwnedTensor ids(Shape shape, const std::vector<std::int32_t>& values) {
  return model::testing::index_tensor(shape, values);
}

TEST(TensorParallel, ColumnParallelLinearMatchesSerial) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  const std::int64_t N = 6, in = 4, out = 6, local = out / kTp, first = tp->rank() * local;
  const OwnedTensor x = random_f64({N, in}, 1), w = random_f64({out, in}, 2),
                    b = random_f64({out}, 3), dy = random_f64({N, out}, 4);
  OwnedTensor y = zeros_f64({N, out}), dx = zeros_f64({N, in}), dw = zeros_f64({out, in}),
              db = zeros_f64({out});
  ColumnParallelLinear serial;
  serial.forward(y, x, w, b);
  serial.backward(dx, dw, db, dy, x, w);

  const ColumnParallelLinear column(tp.get());
  const OwnedTensor w_local = slice(w, 0, first, local), b_local = slice(b, 0, first, local),
                    dy_local = slice(dy, 1, first, local);
  OwnedTensor y_local = zeros_f64({N, local}), dx_tp = zeros_f64({N, in}),
              dw_local = zeros_f64({local, in}), db_local = zeros_f64({local});
  column.forward(y_local, x, w_local, b_local);
  column.backward(dx_tp, dw_local, db_local, dy_local, x, w_local);
  expect_near(y_local, slice(y, 1, first, local), "y: this rank's output features");
  expect_near(dx_tp, dx, "dx: all-reduced over tp");
  expect_near(dw_local, slice(dw, 0, first, local), "dw rows");
  expect_near(db_local, slice(db, 0, first, local), "db rows");
}

TEST(TensorParallel, RowParallelLinearMatchesSerial) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  const std::int64_t N = 6, in = 6, out = 5, local = in / kTp, first = tp->rank() * local;
  const OwnedTensor x = random_f64({N, in}, 11), w = random_f64({out, in}, 12),
                    b = random_f64({out}, 13), dy = random_f64({N, out}, 14);
  const OwnedTensor zero_ids = ids({N}, std::vector<std::int32_t>(N, 0));
  OwnedTensor y = zeros_f64({N, out}), dx = zeros_f64({N, in}), dw = zeros_f64({out, in}),
              db = zeros_f64({out});
  RowParallelLinear serial;
  serial.forward(y, x, w, b, zero_ids);
  serial.backward(dx, dw, db, dy, x, w);

  const RowParallelLinear row(tp.get());
  const OwnedTensor x_local = slice(x, 1, first, local), w_local = slice(w, 1, first, local);
  OwnedTensor y_tp = zeros_f64({N, out}), dx_local = zeros_f64({N, local}),
              dw_local = zeros_f64({out, local}), db_tp = zeros_f64({out});
  row.forward(y_tp, x_local, w_local, b, zero_ids);
  row.backward(dx_local, dw_local, db_tp, dy, x_local, w_local);
  expect_near(y_tp, y, "y: summed over tp, bias added once");
  expect_near(dx_local, slice(dx, 1, first, local), "dx: this rank's input features");
  expect_near(dw_local, slice(dw, 1, first, local), "dw columns");
  expect_near(db_tp, db, "db (replicated)");
}

TEST(TensorParallel, VocabParallelEmbeddingMatchesSerial) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  const std::int64_t V = 8, C = 3, N = 7, rows = V / kTp;
  const OwnedTensor table = random_f64({V, C}, 21), dout = random_f64({N, C}, 22);
  const OwnedTensor tokens = ids({N}, {0, 7, 3, 4, 4, 1, 6});  // ids of both shards, repeated
  OwnedTensor out = zeros_f64({N, C}), dtable = zeros_f64({V, C});
  const VocabParallelEmbedding serial(nullptr, VocabShard::of(V, V, 0, 1));
  serial.forward(out, tokens, table);
  serial.backward(dtable, dout, tokens);

  const VocabShard shard = VocabShard::of(V, V, tp->rank(), kTp);
  EXPECT_EQ(shard.first, tp->rank() * rows);
  const VocabParallelEmbedding embedding(tp.get(), shard);
  const OwnedTensor table_local = slice(table, 0, shard.first, rows);
  OwnedTensor out_tp = zeros_f64({N, C}), dtable_local = zeros_f64({rows, C});
  embedding.forward(out_tp, tokens, table_local);
  embedding.backward(dtable_local, dout, tokens);
  expect_near(out_tp, out, "embedding: all-reduced over tp");
  expect_near(dtable_local, slice(dtable, 0, shard.first, rows), "dtable rows");
}

// vocab 7 of 8 padded rows: the second shard has a padding column; vocab 3: it has no real
// row at all (no gradient may flow through it).
TEST(TensorParallel, VocabParallelCrossEntropyMatchesSerial) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  for (const std::int64_t vocab : {7, 3}) {
    SCOPED_TRACE(vocab);
    const std::int64_t N = 5, Vp = 8, local = Vp / kTp;
    const OwnedTensor logits = random_f64({N, Vp}, 31 + static_cast<std::uint64_t>(vocab));
    const OwnedTensor targets = ids({N}, {0, 2, 1, vocab == 7 ? 6 : 2, 1});
    OwnedTensor mask(DType::U8, {N});
    for (std::int64_t i = 0; i < N; ++i) mask.data<std::uint8_t>()[i] = i == 2 ? 0 : 1;
    const double grad_scale = 0.25;

    OwnedTensor losses = zeros_f64({N}), lse = zeros_f64({N}), loss_sum = zeros_f64({2});
    OwnedTensor dlogits = zeros_f64({N, Vp});
    const VocabParallelCrossEntropy serial(nullptr, VocabShard::of(vocab, Vp, 0, 1));
    serial.forward(losses, lse, loss_sum, logits, targets, mask, {});
    serial.backward(dlogits, logits, targets, lse, mask, grad_scale);

    const VocabShard shard = VocabShard::of(vocab, Vp, tp->rank(), kTp);
    const VocabParallelCrossEntropy cross_entropy(tp.get(), shard);
    const OwnedTensor logits_local = slice(logits, 1, tp->rank() * local, local);
    OwnedTensor losses_tp = zeros_f64({N}), lse_tp = zeros_f64({N}), loss_sum_tp = zeros_f64({2});
    OwnedTensor row_max = zeros_f64({N}), exp_and_target = zeros_f64({2, N});
    OwnedTensor dlogits_local = zeros_f64({N, local});
    cross_entropy.forward(losses_tp, lse_tp, loss_sum_tp, logits_local, targets, mask,
                          {row_max, exp_and_target});
    cross_entropy.backward(dlogits_local, logits_local, targets, lse_tp, mask, grad_scale);
    expect_near(losses_tp, losses, "losses");
    expect_near(lse_tp, lse, "lse");
    expect_near(loss_sum_tp, loss_sum, "loss_sum");
    expect_near(dlogits_local, slice(dlogits, 1, tp->rank() * local, local), "dlogits columns");
  }
}

// ---- sequence parallelism -------------------------------------------------------------------
// Each rank holds the chunk [B, T/tp, C] of the sequence outside the column -> row regions.
// B = 1 moves the buffers as they are; B = 3 goes through the rank-major staging copy.

// Scratch of the sequence collectives for [B, T, C].
struct Scratch {
  OwnedTensor full, staging;
  Scratch(std::int64_t B, std::int64_t T, std::int64_t C) : full(zeros_f64({B, T, C})), staging(zeros_f64({B, T, C})) {}
  SequenceScratch view() const { return {full, staging}; }
};

// value(r, b, t, c): distinct for every element and rank.
double value(int rank, std::int64_t b, std::int64_t t, std::int64_t c) {
  return 1000.0 * rank + 100.0 * static_cast<double>(b) + 10.0 * static_cast<double>(t) + static_cast<double>(c);
}

TEST(TensorParallel, SequenceGatherAndReduceScatterKeepTheRanksChunksInOrder) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  for (const std::int64_t B : {1, 3}) {
    SCOPED_TRACE(B);
    const std::int64_t T = 6, C = 2, chunk = T / kTp;
    const int me = tp->rank();
    OwnedTensor mine = zeros_f64({B, chunk, C}), full = zeros_f64({B, T, C}), staging = zeros_f64({B, T, C});
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < chunk; ++t)
        for (std::int64_t c = 0; c < C; ++c)
          mine.data<double>()[(b * chunk + t) * C + c] = value(me, b, me * chunk + t, c);
    all_gather_sequence(*tp, full, mine, staging);
    // Position t of row b comes from the rank whose chunk holds t.
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t c = 0; c < C; ++c)
          EXPECT_EQ(full.data<double>()[(b * T + t) * C + c], value(static_cast<int>(t / chunk), b, t, c))
              << "b " << b << " t " << t << " c " << c;

    // Every rank contributes value(rank, ...) at every position: the chunk gets the sum over
    // ranks at its own positions.
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t c = 0; c < C; ++c) full.data<double>()[(b * T + t) * C + c] = value(me, b, t, c);
    reduce_scatter_sequence(*tp, mine, full, staging);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < chunk; ++t)
        for (std::int64_t c = 0; c < C; ++c)
          EXPECT_EQ(mine.data<double>()[(b * chunk + t) * C + c],
                    value(0, b, me * chunk + t, c) + value(1, b, me * chunk + t, c))
              << "b " << b << " t " << t << " c " << c;
  }
}

TEST(TensorParallel, SequenceParallelColumnLinearMatchesSerial) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  for (const std::int64_t B : {1, 3}) {
    SCOPED_TRACE(B);
    const std::int64_t T = 4, in = 4, out = 6, chunk = T / kTp, local = out / kTp;
    const std::int64_t first = tp->rank() * local, t0 = tp->rank() * chunk;
    const OwnedTensor x = random_f64({B, T, in}, 41), w = random_f64({out, in}, 42),
                      b = random_f64({out}, 43), dy = random_f64({B, T, out}, 44);
    OwnedTensor y = zeros_f64({B, T, out}), dx = zeros_f64({B, T, in}), dw = zeros_f64({out, in}),
                db = zeros_f64({out});
    ColumnParallelLinear serial;
    serial.forward(y, x, w, b);
    serial.backward(dx, dw, db, dy, x, w);

    const ColumnParallelLinear column(tp.get(), SequenceParallel::on);
    const Scratch scratch(B, T, in);
    const OwnedTensor x_chunk = slice(x, 1, t0, chunk), w_local = slice(w, 0, first, local),
                      b_local = slice(b, 0, first, local), dy_local = slice(dy, 2, first, local);
    OwnedTensor y_local = zeros_f64({B, T, local}), dx_chunk = zeros_f64({B, chunk, in}),
                dw_local = zeros_f64({local, in}), db_local = zeros_f64({local});
    column.forward(y_local, x_chunk, w_local, b_local, scratch.view());
    column.backward(dx_chunk, dw_local, db_local, dy_local, x_chunk, w_local, scratch.view());
    expect_near(y_local, slice(y, 2, first, local), "y: this rank's features of all T");
    expect_near(dx_chunk, slice(dx, 1, t0, chunk), "dx: this rank's chunk of the tp sum");
    expect_near(dw_local, slice(dw, 0, first, local), "dw rows (x gathered again)");
    expect_near(db_local, slice(db, 0, first, local), "db rows");
  }
}

TEST(TensorParallel, SequenceParallelRowLinearMatchesSerial) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  for (const std::int64_t B : {1, 3}) {
    SCOPED_TRACE(B);
    const std::int64_t T = 4, in = 6, out = 5, chunk = T / kTp, local = in / kTp;
    const std::int64_t first = tp->rank() * local, t0 = tp->rank() * chunk;
    const OwnedTensor x = random_f64({B, T, in}, 51), w = random_f64({out, in}, 52),
                      b = random_f64({out}, 53), dy = random_f64({B, T, out}, 54);
    OwnedTensor y = zeros_f64({B, T, out}), dx = zeros_f64({B, T, in}), dw = zeros_f64({out, in}),
                db = zeros_f64({out});
    RowParallelLinear serial;
    serial.forward(y, x, w, b, ids({B * T}, std::vector<std::int32_t>(B * T, 0)));
    serial.backward(dx, dw, db, dy, x, w);

    const RowParallelLinear row(tp.get(), SequenceParallel::on);
    const Scratch scratch(B, T, out);
    const OwnedTensor x_local = slice(x, 2, first, local), w_local = slice(w, 1, first, local),
                      dy_chunk = slice(dy, 1, t0, chunk);
    const OwnedTensor chunk_zero_ids = ids({B * chunk}, std::vector<std::int32_t>(B * chunk, 0));
    OwnedTensor y_chunk = zeros_f64({B, chunk, out}), dx_local = zeros_f64({B, T, local}),
                dw_local = zeros_f64({out, local}), db_tp = zeros_f64({out});
    row.forward(y_chunk, x_local, w_local, b, chunk_zero_ids, scratch.view());
    row.backward(dx_local, dw_local, db_tp, dy_chunk, x_local, w_local, scratch.view());
    expect_near(y_chunk, slice(y, 1, t0, chunk), "y: this rank's chunk of the tp sum, bias once");
    expect_near(dx_local, slice(dx, 2, first, local), "dx: this rank's features of all T");
    expect_near(dw_local, slice(dw, 1, first, local), "dw columns");
    expect_near(db_tp, db, "db: whole on every rank (dy gathered)");
  }
}

TEST(TensorParallel, SequenceParallelEmbeddingMatchesSerial) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  const std::int64_t V = 8, C = 3, B = 2, T = 4, chunk = T / kTp, rows = V / kTp;
  const std::int64_t t0 = tp->rank() * chunk;
  const OwnedTensor table = random_f64({V, C}, 61), dout = random_f64({B, T, C}, 62);
  const OwnedTensor tokens = ids({B, T}, {0, 7, 3, 4, 4, 1, 6, 6});
  OwnedTensor out = zeros_f64({B, T, C}), dtable = zeros_f64({V, C});
  const VocabParallelEmbedding serial(nullptr, VocabShard::of(V, V, 0, 1));
  serial.forward(out, tokens, table);
  serial.backward(dtable, dout, tokens);

  const VocabShard shard = VocabShard::of(V, V, tp->rank(), kTp);
  const VocabParallelEmbedding embedding(tp.get(), shard, SequenceParallel::on);
  const Scratch scratch(B, T, C);
  const OwnedTensor table_local = slice(table, 0, shard.first, rows), dout_chunk = slice(dout, 1, t0, chunk);
  OwnedTensor out_chunk = zeros_f64({B, chunk, C}), dtable_local = zeros_f64({rows, C});
  embedding.forward(out_chunk, tokens, table_local, scratch.view());
  embedding.backward(dtable_local, dout_chunk, tokens, scratch.view());
  expect_near(out_chunk, slice(out, 1, t0, chunk), "embedding: this rank's chunk of the tp sum");
  expect_near(dtable_local, slice(dtable, 0, shard.first, rows), "dtable rows (dout gathered)");
}

// The ranges are summed over tp, in place; everything else stays this rank's own. A ZeRO shard
// (first > 0) sums only the parts of the ranges inside it.
TEST(TensorParallel, SequenceParallelGradientsSumTheirRangesOverTp) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  const double me = tp->rank() + 1.0, sum = 1.0 + 2.0;
  SequenceParallelGradients partial(*tp, {{1, 2}, {4, 3}, {8, 1}}, DType::F64, memory::host_allocator());
  const OwnedTensor grads = zeros_f64({10});
  ops::fill(grads, me);
  partial.complete(grads, 0);
  EXPECT_EQ(to_vector(grads), (std::vector<double>{me, sum, sum, me, sum, sum, sum, me, sum, me}));

  const OwnedTensor shard = zeros_f64({4});  // elements [5, 9) of the flat buffer
  ops::fill(shard, me);
  partial.complete(shard, 5);
  EXPECT_EQ(to_vector(shard), (std::vector<double>{sum, sum, me, sum}));
}

}  // namespace
}  // namespace kiln::parallel
