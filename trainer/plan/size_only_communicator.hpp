#pragma once
// A process group of a planned layout, seen from one of its ranks: it has a size and a rank and
// moves nothing. `kiln plan` hands it to the classes that size their buffers by their group
// (DataParallel's ZeRO shard, sequence parallelism's packed gradients), so the plan builds a
// rank's buffers with the trainer's own code and no other process. Any collective or message
// on it is a kiln::Error: planning must never communicate.
#include <string>

#include "parallel/communicator.hpp"

namespace kiln::plan {

class SizeOnlyCommunicator final : public parallel::Communicator {
 public:
  SizeOnlyCommunicator(std::string name, int size, int rank = 0);

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce(Tensor x, parallel::ReduceOp op) override;
  void reduce_scatter(Tensor shard, Tensor full) override;
  void all_gather(Tensor full, Tensor shard) override;
  void broadcast(Tensor x, int root) override;
  void send(Tensor x, int destination) override;
  void recv(Tensor x, int source) override;
  void send_recv(Tensor out, int destination, Tensor in, int source) override;
  void barrier() override;
  parallel::CollectiveHandle all_reduce_async(Tensor x, parallel::ReduceOp op) override;
  parallel::CollectiveHandle reduce_scatter_async(Tensor part, Tensor full,
                                                  std::span<const std::int64_t> counts) override;
  parallel::CollectiveHandle all_gather_async(Tensor full, std::span<const std::int64_t> counts) override;
  parallel::CollectiveHandle send_recv_async(Tensor out, int destination, Tensor in, int source) override;
  std::unique_ptr<parallel::Communicator> split(int color, int key, std::string name) override;

 private:
  [[noreturn]] void refuse(const char* operation) const;

  int size_;
  int rank_;
};

}  // namespace kiln::plan
