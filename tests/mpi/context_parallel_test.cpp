// Context parallelism (parallel/context_parallel.hpp) on 2 and 4 ranks, the world as the cp
// group: ring attention over this rank's two chunks gives, in f64, the serial attention's
// output, log-sum-exp and gradients (dq, and dk/dv summed over every rank's queries) for its
// tokens; causal with GQA, with packed documents that cross chunk borders (one spans several
// chunks, an id comes back after another document) and with whole rows. ContextChunks' run
// bookkeeping and take() are checked against a direct reading of the ids.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/memory/host_allocator.hpp"
#include "kernels/ops.hpp"
#include "parallel/communicator.hpp"
#include "parallel/context_parallel.hpp"

namespace kiln::parallel {
namespace {

Communicator& world() {
  static auto communicator = world_communicator();
  return *communicator;
}

constexpr std::int64_t B = 2, C = 5, Hq = 4, Hkv = 2, D = 8;

double value_at(std::uint64_t seed, std::int64_t i) {
  const std::uint64_t x = (static_cast<std::uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ull ^ seed * 0xD1B54A32D192ED03ull;
  return static_cast<double>((x >> 11) % 20001) / 10000.0 - 1.0;  // in [-1, 1], never all zeros
}

OwnedTensor random_f64(Shape shape, std::uint64_t seed) {
  OwnedTensor t(DType::F64, shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = value_at(seed, i);
  return t;
}

// Documents of lengths 3, 17, 1, 8, 2, ... per row (the second row shifted), ids 0, 1, 0, 1:
// runs, not ids, bound attention, and the 17-token one spans several chunks.
std::vector<std::int64_t> packed_ids(std::int64_t rows, std::int64_t seq) {
  const std::int64_t lengths[] = {3, 17, 1, 8, 2, 30, 4};
  std::vector<std::int64_t> ids;
  for (std::int64_t b = 0; b < rows; ++b) {
    std::int64_t run = b, left = lengths[b];
    for (std::int64_t t = 0; t < seq; ++t) {
      if (left == 0) left = lengths[++run % 7];
      ids.push_back(run % 2);
      --left;
    }
  }
  return ids;
}

// This rank's tokens [B, 2c, ...] of a global [B, T, ...] tensor (rows of `width` values).
OwnedTensor local_rows(const Tensor& global, const ContextChunks& chunks, int rank) {
  Shape shape = global.shape;
  shape[1] = 2 * chunks.chunk();
  OwnedTensor local(global.dtype, shape);
  for (std::int64_t b = 0; b < global.size(0); ++b)
    for (int part = 0; part < 2; ++part)
      ops::copy(local.tensor().narrow(0, b, 1).narrow(1, part * chunks.chunk(), chunks.chunk()),
                global.narrow(0, b, 1).narrow(1, chunks.global_chunk(rank, part) * chunks.chunk(), chunks.chunk()));
  return local;
}

// The same for [B, H, T] statistics.
OwnedTensor local_stats(const Tensor& global, const ContextChunks& chunks, int rank) {
  OwnedTensor local(global.dtype, {global.size(0), global.size(1), 2 * chunks.chunk()});
  for (int part = 0; part < 2; ++part)
    ops::copy(local.tensor().narrow(2, part * chunks.chunk(), chunks.chunk()),
              global.narrow(2, chunks.global_chunk(rank, part) * chunks.chunk(), chunks.chunk()));
  return local;
}

double largest_difference(const Tensor& a, const Tensor& b) {
  OwnedTensor x(DType::F64, a.shape), y(DType::F64, b.shape);
  ops::copy(x, a);
  ops::copy(y, b);
  double worst = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i)
    worst = std::max(worst, std::fabs(x.data<double>()[i] - y.data<double>()[i]));
  return worst;
}

void check_ring_attention(bool documents) {
  SCOPED_TRACE(documents ? "packed documents" : "whole rows");
  auto& cp = world();
  const int ranks = cp.size(), rank = cp.rank();
  const std::int64_t T = 2 * ranks * C;
  const std::vector<std::int64_t> ids = documents ? packed_ids(B, T) : std::vector<std::int64_t>{};
  const ContextChunks chunks(ids, B, T, ranks);
  const OwnedTensor q = random_f64({B, T, Hq, D}, 1), k = random_f64({B, T, Hkv, D}, 2), v = random_f64({B, T, Hkv, D}, 3);
  const OwnedTensor dout = random_f64({B, T, Hq, D}, 4);
  OwnedTensor doc_ids(DType::I64, {B, T});
  std::copy(ids.begin(), ids.end(), doc_ids.data<std::int64_t>());
  const Tensor global_docs = documents ? doc_ids.tensor() : Tensor{};

  // The serial reference over the whole sequence.
  OwnedTensor out(DType::F64, {B, T, Hq, D}), lse(DType::F64, {B, Hq, T});
  ops::flash_attention_forward(out, lse, q, k, v, global_docs);
  OwnedTensor dq(DType::F64, q.tensor().shape), dk(DType::F64, k.tensor().shape), dv(DType::F64, v.tensor().shape);
  ops::flash_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, global_docs);

  // This rank's part.
  const OwnedTensor lq = local_rows(q, chunks, rank), lk = local_rows(k, chunks, rank), lv = local_rows(v, chunks, rank);
  const OwnedTensor ldout = local_rows(dout, chunks, rank);
  OwnedTensor local_ids(DType::I64, {B, 2 * C});
  if (documents) {
    const auto taken = chunks.take(ids, rank);
    std::copy(taken.begin(), taken.end(), local_ids.data<std::int64_t>());
  }
  const Tensor docs = documents ? local_ids.tensor() : Tensor{};
  RingAttention ring(&cp, memory::host_allocator());
  OwnedTensor lout(DType::F64, lq.tensor().shape), llse(DType::F64, {B, Hq, 2 * C});
  ring.forward(lout, llse, lq, lk, lv, docs, chunks);
  EXPECT_LT(largest_difference(lout, local_rows(out, chunks, rank)), 1e-13);
  EXPECT_LT(largest_difference(llse, local_stats(lse, chunks, rank)), 1e-13);
  OwnedTensor ldq(DType::F64, lq.tensor().shape), ldk(DType::F64, lk.tensor().shape), ldv(DType::F64, lv.tensor().shape);
  ring.backward(ldq, ldk, ldv, ldout, lq, lk, lv, lout, llse, docs, chunks);
  EXPECT_LT(largest_difference(ldq, local_rows(dq, chunks, rank)), 1e-12);
  EXPECT_LT(largest_difference(ldk, local_rows(dk, chunks, rank)), 1e-12);
  EXPECT_LT(largest_difference(ldv, local_rows(dv, chunks, rank)), 1e-12);
}

TEST(ContextParallel, RingAttentionEqualsSerialAttentionOverPackedDocuments) { check_ring_attention(true); }

TEST(ContextParallel, RingAttentionEqualsSerialAttentionOverWholeRows) { check_ring_attention(false); }

TEST(ContextParallel, ChunkRunsAndTakeFollowTheIds) {
  const int ranks = 3;
  const std::int64_t T = 2 * ranks * 4;
  const auto ids = packed_ids(2, T);
  const ContextChunks chunks(ids, 2, T, ranks);
  for (std::int64_t b = 0; b < 2; ++b)
    for (int g = 0; g < 2 * ranks; ++g) {
      const std::int64_t first = g * 4;
      std::int64_t start = first;
      while (start > 0 && ids[b * T + start - 1] == ids[b * T + first]) --start;
      std::int64_t length = 0;
      while (length < 4 && ids[b * T + first + length] == ids[b * T + first]) ++length;
      EXPECT_EQ(chunks.run_start(b, g), start) << "row " << b << " chunk " << g;
      EXPECT_EQ(chunks.first_run(b, g), length) << "row " << b << " chunk " << g;
    }
  // Rank 1 of 3 holds chunks 1 and 4.
  std::vector<std::int64_t> positions(static_cast<std::size_t>(2 * T));
  for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<std::int64_t>(i);
  const auto taken = chunks.take(positions, 1);
  const std::vector<std::int64_t> row0{4, 5, 6, 7, 16, 17, 18, 19};
  EXPECT_TRUE(std::equal(row0.begin(), row0.end(), taken.begin()));
  EXPECT_EQ(taken[8], T + 4);
  EXPECT_THROW(ContextChunks(ids, 2, T, 5), Error) << "24 tokens are not 10 equal chunks";
}

}  // namespace
}  // namespace kiln::parallel
