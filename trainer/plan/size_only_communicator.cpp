#include "trainer/plan/size_only_communicator.hpp"

#include "trainer/core/error.hpp"

namespace kiln::plan {

SizeOnlyCommunicator::SizeOnlyCommunicator(std::string name, int size, int rank)
    : Communicator(std::move(name)), size_(size), rank_(rank) {
  if (size < 1 || rank < 0 || rank >= size)
    fail("plan: rank {} of a {} group of {} does not exist", rank, this->name(), size);
}

void SizeOnlyCommunicator::refuse(const char* operation) const {
  fail("plan: {} on the planned {} group: a plan builds buffers and never communicates", operation, name());
}

void SizeOnlyCommunicator::all_reduce(Tensor, parallel::ReduceOp) { refuse("all_reduce"); }
void SizeOnlyCommunicator::reduce_scatter(Tensor, Tensor) { refuse("reduce_scatter"); }
void SizeOnlyCommunicator::all_gather(Tensor, Tensor) { refuse("all_gather"); }
void SizeOnlyCommunicator::broadcast(Tensor, int) { refuse("broadcast"); }
void SizeOnlyCommunicator::send(Tensor, int) { refuse("send"); }
void SizeOnlyCommunicator::recv(Tensor, int) { refuse("recv"); }
void SizeOnlyCommunicator::send_recv(Tensor, int, Tensor, int) { refuse("send_recv"); }
void SizeOnlyCommunicator::barrier() { refuse("barrier"); }
parallel::CollectiveHandle SizeOnlyCommunicator::all_reduce_async(Tensor, parallel::ReduceOp) {
  refuse("all_reduce_async");
}
parallel::CollectiveHandle SizeOnlyCommunicator::reduce_scatter_async(Tensor, Tensor, std::span<const std::int64_t>) {
  refuse("reduce_scatter_async");
}
parallel::CollectiveHandle SizeOnlyCommunicator::send_recv_async(Tensor, int, Tensor, int) {
  refuse("send_recv_async");
}

parallel::CollectiveHandle SizeOnlyCommunicator::all_gather_async(Tensor, std::span<const std::int64_t>) {
  refuse("all_gather_async");
}
std::unique_ptr<parallel::Communicator> SizeOnlyCommunicator::split(int, int, std::string) { refuse("split"); }

}  // namespace kiln::plan
