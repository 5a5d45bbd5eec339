// Runs under mpirun with 2 or 4 ranks (ctest mpi.ranks2 / mpi.ranks4).
#include "parallel/communicator.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "parallel/process_grid.hpp"

namespace {

using kiln::Tensor;
using kiln::parallel::Communicator;
using kiln::parallel::ProcessGrid;
using kiln::parallel::ReduceOp;

Communicator& world() {
  static auto communicator = kiln::parallel::world_communicator();
  return *communicator;
}

TEST(MpiCommunicator, AllReduceSumAndMax) {
  auto& comm = world();
  const int n = comm.size();
  std::vector<double> values = {1.0 + comm.rank(), 10.0 * comm.rank(), -1.0};
  comm.all_reduce(Tensor::of(values.data(), {3}));
  EXPECT_DOUBLE_EQ(values[0], n + n * (n - 1) / 2.0);
  EXPECT_DOUBLE_EQ(values[1], 10.0 * n * (n - 1) / 2.0);
  EXPECT_DOUBLE_EQ(values[2], -n);
  std::vector<float> maxima = {static_cast<float>(comm.rank()), -static_cast<float>(comm.rank())};
  comm.all_reduce(Tensor::of(maxima.data(), {2}), ReduceOp::Max);
  EXPECT_EQ(maxima[0], static_cast<float>(n - 1));
  EXPECT_EQ(maxima[1], 0.0f);
  EXPECT_GT(comm.traffic().all_reduce, 0u);
}

TEST(MpiCommunicator, ReduceScatterThenAllGatherIsAllReduce) {
  auto& comm = world();
  const int n = comm.size();
  std::vector<float> full(static_cast<std::size_t>(3 * n));
  std::iota(full.begin(), full.end(), static_cast<float>(comm.rank()));
  std::vector<float> shard(3), gathered(full.size()), reduced = full;
  comm.reduce_scatter(Tensor::of(shard.data(), {3}), Tensor::of(full.data(), {3 * n}));
  comm.all_gather(Tensor::of(gathered.data(), {3 * n}), Tensor::of(shard.data(), {3}));
  comm.all_reduce(Tensor::of(reduced.data(), {3 * n}));
  EXPECT_EQ(gathered, reduced);
}

TEST(MpiCommunicator, SendRecvRingAndBroadcast) {
  auto& comm = world();
  const int n = comm.size(), rank = comm.rank();
  std::vector<std::int64_t> out = {rank, rank * 100}, in(2);
  // Even ranks send first so the blocking ring cannot deadlock.
  const int next = (rank + 1) % n, previous = (rank + n - 1) % n;
  if (rank % 2 == 0) {
    comm.send(Tensor::of(out.data(), {2}), next);
    comm.recv(Tensor::of(in.data(), {2}), previous);
  } else {
    comm.recv(Tensor::of(in.data(), {2}), previous);
    comm.send(Tensor::of(out.data(), {2}), next);
  }
  EXPECT_EQ(in[0], previous);
  EXPECT_EQ(in[1], previous * 100);
  std::vector<std::uint32_t> shared = {static_cast<std::uint32_t>(rank == 1 ? 42 : 0)};
  comm.broadcast(Tensor::of(shared.data(), {1}), 1);
  EXPECT_EQ(shared[0], 42u);
}

TEST(MpiCommunicator, SizeMismatchIsAnError) {
  auto& comm = world();
  std::vector<float> full(5), shard(2);
  EXPECT_THROW(comm.reduce_scatter(Tensor::of(shard.data(), {2}), Tensor::of(full.data(), {5})), kiln::Error);
}

TEST(ProcessGrid, CoordinatesAndGroupsFollowTheRankOrder) {
  auto& comm = world();
  const int n = comm.size();
  const int tp = n >= 2 ? 2 : 1, pp = n >= 4 ? 2 : 1, dp = n / (tp * pp);
  ProcessGrid grid(comm, dp, tp, pp);
  const int rank = comm.rank();
  EXPECT_EQ(grid.tp_rank(), rank % tp);
  EXPECT_EQ(grid.dp_rank(), (rank / tp) % dp);
  EXPECT_EQ(grid.pp_rank(), rank / (tp * dp));
  EXPECT_EQ(ProcessGrid::world_rank_of(grid.coordinates(), dp, tp), rank);
  EXPECT_EQ(grid.tp().size(), tp);
  EXPECT_EQ(grid.tp().rank(), grid.tp_rank());
  EXPECT_EQ(grid.dp().size(), dp);
  EXPECT_EQ(grid.pp().size(), pp);
  EXPECT_EQ(grid.pp().rank(), grid.pp_rank());
  // The tp group sums world ranks of the same (dp, pp): tp consecutive ranks.
  std::vector<std::int64_t> value = {rank};
  grid.tp().all_reduce(Tensor::of(value.data(), {1}));
  const int base = rank - rank % tp;
  EXPECT_EQ(value[0], tp * base + tp * (tp - 1) / 2);
  EXPECT_EQ(grid.embedding() != nullptr, pp > 1);
  EXPECT_THROW(ProcessGrid(comm, n, 2, 1), kiln::Error);  // 2n ranks wanted
}

}  // namespace
