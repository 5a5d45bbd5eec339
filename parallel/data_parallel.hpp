#pragma once
// Data parallelism over a flat gradient buffer (DESIGN.md §6).
//
// Plain DP: after the local backward, every rank's gradients are summed over the dp group in
// buckets of bucket_bytes (so a message never exceeds what MPI takes in one call, and a
// GPU implementation can overlap buckets with the backward). The loss was scaled by
// 1 / (tokens counted in the global batch), so the sum is the global batch's gradient.
//
// ZeRO-1: the buffer is split into dp equal shards (the last padded); reduce_scatter leaves
// each rank the summed gradients of its shard only, the rank updates its shard of the
// parameters with its shard of the optimizer state, and all_gather_parameters gives every
// rank the whole updated buffer again.
#include <cstdint>

#include "kernels/tensor.hpp"
#include "parallel/communicator.hpp"

namespace kiln::parallel {

class DataParallel {
 public:
  DataParallel(Communicator& dp, std::int64_t numel, DType dtype, bool zero, std::size_t bucket_bytes = 64u << 20);

  bool zero() const { return zero_; }
  // This rank's shard [begin, end) of the flat buffer (everything without ZeRO).
  std::int64_t shard_begin() const { return shard_begin_; }
  std::int64_t shard_end() const { return shard_end_; }

  // Without ZeRO: sums `grads` [numel] over dp in place; returns it.
  // With ZeRO: returns this rank's summed shard [shard_end - shard_begin] (a view of an
  // internal buffer, valid until the next call); `grads` is left as it was.
  Tensor reduce_gradients(Tensor grads);
  // ZeRO only: every rank's updated shard of `values` [numel] into all of `values`.
  void all_gather_parameters(Tensor values);

 private:
  Communicator& dp_;
  std::int64_t numel_;
  bool zero_;
  std::int64_t bucket_elements_;
  std::int64_t shard_size_ = 0;
  std::int64_t shard_begin_ = 0;
  std::int64_t shard_end_ = 0;
  OwnedTensor padded_;  // [shard_size * dp] staging for the collectives (ZeRO)
  OwnedTensor shard_;   // [shard_size]
};

}  // namespace kiln::parallel
