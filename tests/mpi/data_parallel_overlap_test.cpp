// Non-blocking collectives and overlapped data-parallel buckets under mpirun (2 or 4 ranks):
// the whole world is the dp group. Gradients are small integers (exact in f32 whatever the
// order of the sum), so every result is checked against the exact sum as well as between the
// overlapped and the sequential schedule, bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "parallel/communicator.hpp"
#include "parallel/data_parallel.hpp"

namespace kiln::parallel {
namespace {

Communicator& world() {
  static auto communicator = world_communicator();
  return *communicator;
}

float gradient_of(int rank, std::int64_t i) { return static_cast<float>((i * 7 + rank * 3) % 11) - 5.0f; }

std::vector<float> rank_gradients(int rank, std::int64_t numel) {
  std::vector<float> g(static_cast<std::size_t>(numel));
  for (std::int64_t i = 0; i < numel; ++i) g[static_cast<std::size_t>(i)] = gradient_of(rank, i);
  return g;
}

float summed_gradient(std::int64_t i, int ranks) {
  float sum = 0;
  for (int r = 0; r < ranks; ++r) sum += gradient_of(r, i);
  return sum;
}

TEST(MpiCommunicatorAsync, SeveralAllReducesInFlightAtOnce) {
  auto& comm = world();
  const int n = comm.size();
  std::vector<double> a{1.0 + comm.rank(), 2.0}, b{10.0 * comm.rank()};
  const auto before = comm.traffic().all_reduce;
  auto first = comm.all_reduce_async(Tensor::of(a.data(), {2}));
  auto second = comm.all_reduce_async(Tensor::of(b.data(), {1}), ReduceOp::Max);
  EXPECT_GT(comm.traffic().all_reduce, before);  // counted when started
  second.wait();
  first.wait();
  EXPECT_TRUE(first.done() && second.done());
  EXPECT_DOUBLE_EQ(a[0], n + n * (n - 1) / 2.0);
  EXPECT_DOUBLE_EQ(a[1], 2.0 * n);
  EXPECT_DOUBLE_EQ(b[0], 10.0 * (n - 1));
}

TEST(MpiCommunicatorAsync, UnevenReduceScatterWithAnEmptyPart) {
  auto& comm = world();
  const int n = comm.size();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) counts[static_cast<std::size_t>(r)] = r == 1 ? 0 : r + 2;  // rank 1 gets nothing
  const std::int64_t total = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
  std::vector<float> full = rank_gradients(comm.rank(), total);
  const std::int64_t mine = counts[static_cast<std::size_t>(comm.rank())];
  std::vector<float> part(static_cast<std::size_t>(std::max<std::int64_t>(mine, 1)), -100.0f);
  auto handle = comm.reduce_scatter_async(Tensor::of(part.data(), {mine}), Tensor::of(full.data(), {total}), counts);
  while (!handle.test()) {
  }
  const std::int64_t first = std::accumulate(counts.begin(), counts.begin() + comm.rank(), std::int64_t{0});
  for (std::int64_t i = 0; i < mine; ++i) EXPECT_EQ(part[static_cast<std::size_t>(i)], summed_gradient(first + i, n));
  if (mine == 0) EXPECT_EQ(part[0], -100.0f);  // nothing written
}

// The backward, as DataParallel sees it: the layers become final from the last to the first.
// Before each report the "backward" still writes the gradients below the reported offset.
Tensor run_schedule(DataParallel& dp, std::vector<float>& grads, const std::vector<std::int64_t>& offsets, bool overlap,
                    std::vector<std::size_t>& started_before_end) {
  const auto numel = static_cast<std::int64_t>(grads.size());
  std::vector<float> final_values = grads;
  std::fill(grads.begin(), grads.end(), 0.0f);
  const Tensor tensor = Tensor::of(grads.data(), {numel});
  if (overlap) dp.start(tensor);
  std::int64_t end = numel;
  for (auto offset = offsets.rbegin(); offset != offsets.rend(); ++offset) {
    std::copy(final_values.begin() + *offset, final_values.begin() + end, grads.begin() + *offset);
    end = *offset;
    if (overlap) dp.gradients_final_from(*offset);
    if (overlap && *offset > 0) started_before_end.push_back(world().traffic().total() > 0 ? 1 : 0);
  }
  return overlap ? dp.finish() : dp.reduce_gradients(tensor);
}

TEST(MpiDataParallel, OverlappedBucketsEqualSequentialBitwiseAndStartDuringTheBackward) {
  auto& comm = world();
  const int n = comm.size();
  const std::vector<std::int64_t> offsets{0, 13, 40, 41, 90};  // "embedding", 3 "layers", "head"
  const std::int64_t numel = 101;
  for (const bool zero : {false, true}) {
    std::vector<std::vector<float>> results;
    for (const bool overlap : {false, true}) {
      comm.reset_traffic();
      DataParallel dp(comm, numel, DType::F32, zero, offsets, 30 * sizeof(float), 30 * sizeof(float));
      ASSERT_GT(dp.buckets().size(), 2u);
      std::vector<float> grads = rank_gradients(comm.rank(), numel);
      std::vector<std::size_t> started;
      const Tensor reduced = run_schedule(dp, grads, offsets, overlap, started);
      if (overlap) {
        ASSERT_FALSE(started.empty());
        EXPECT_EQ(started.front(), 1u) << "the head's bucket started before the backward ended";
      }
      for (std::int64_t i = 0; i < reduced.numel(); ++i) {
        EXPECT_EQ(reduced.data<float>()[i], summed_gradient(dp.shard_begin() + i, n)) << "element " << i;
      }
      results.emplace_back(reduced.data<float>(), reduced.data<float>() + reduced.numel());
    }
    ASSERT_EQ(results[0].size(), results[1].size());
    EXPECT_EQ(std::memcmp(results[0].data(), results[1].data(), results[0].size() * sizeof(float)), 0)
        << (zero ? "zero" : "plain");
  }
}

TEST(MpiDataParallel, HeldBackBucketsWaitForFinish) {
  auto& comm = world();
  const std::vector<std::int64_t> offsets{0, 10, 20};
  DataParallel dp(comm, 30, DType::F32, false, offsets, 10 * sizeof(float), 10 * sizeof(float));
  dp.hold_back(25, 30);  // the last bucket
  std::vector<float> grads = rank_gradients(comm.rank(), 30);
  comm.reset_traffic();
  dp.start(Tensor::of(grads.data(), {30}));
  dp.gradients_final_from(10);  // [10, 20) starts, [20, 30) is held back
  const auto after_report = comm.traffic().all_reduce;
  EXPECT_GT(after_report, 0u);
  grads[27] = 100.0f;  // still changed after the backward (the embedding group's sum)
  const Tensor reduced = dp.finish();
  EXPECT_EQ(reduced.data<float>()[27], 100.0f * comm.size());
  EXPECT_GT(comm.traffic().all_reduce, after_report);
}

// ZeRO's parameter gather, started after the step and waited for bucket by bucket as the next
// forward reaches each layer: the buckets below an offset are complete when the model asks
// for them, the rest complete at finish, and the values are those of the all-at-once gather.
TEST(MpiDataParallel, ParameterGatherCompletesTheBucketsBelowWhatTheForwardNeeds) {
  auto& comm = world();
  const std::vector<std::int64_t> offsets{0, 13, 40, 41, 90};
  const std::int64_t numel = 101;
  DataParallel dp(comm, numel, DType::F32, /*zero=*/true, offsets, 30 * sizeof(float), 30 * sizeof(float));
  ASSERT_GT(dp.buckets().size(), 2u);
  const auto value = [](std::int64_t i) { return 0.5f * static_cast<float>(i) - 7.0f; };
  std::vector<float> values(static_cast<std::size_t>(numel), -1.0f);  // other ranks' shards: stale
  for (std::int64_t i = dp.shard_begin(); i < dp.shard_end(); ++i) values[i] = value(i);
  comm.reset_traffic();
  dp.start_parameter_gather(Tensor::of(values.data(), {numel}));
  EXPECT_TRUE(dp.gathering_parameters());
  EXPECT_GT(comm.traffic().all_gather, 0u) << "every bucket's gather starts at once";
  const std::int64_t needed = dp.buckets()[1].begin + 1;  // the forward reaches the second bucket
  dp.parameters_needed_below(needed);
  for (std::int64_t i = 0; i < dp.buckets()[1].end; ++i) ASSERT_EQ(values[i], value(i)) << "element " << i;
  EXPECT_TRUE(dp.gathering_parameters()) << "later buckets are still the gather's";
  dp.finish_parameter_gather();
  EXPECT_FALSE(dp.gathering_parameters());
  for (std::int64_t i = 0; i < numel; ++i) ASSERT_EQ(values[i], value(i)) << "element " << i;
  // A second gather of the same shards in one go gives the same bits.
  std::vector<float> again(static_cast<std::size_t>(numel), -2.0f);
  for (std::int64_t i = dp.shard_begin(); i < dp.shard_end(); ++i) again[i] = value(i);
  dp.all_gather_parameters(Tensor::of(again.data(), {numel}));
  EXPECT_EQ(std::memcmp(again.data(), values.data(), values.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace kiln::parallel
