#pragma once
// Data parallelism over a flat gradient buffer (DESIGN.md §6).
//
// Plain DP: every rank's gradients are summed over the dp group in buckets, contiguous ranges
// of the buffer. The loss was scaled by 1 / (tokens counted in the global batch), so the sum
// is the global batch's gradient.
//
// ZeRO-1: the buffer is split into dp equal shards (the last padded); each bucket is
// reduce-scattered so that each rank ends with the summed gradients of its shard only, the
// rank updates its shard of the parameters with its shard of the optimizer state, and the
// updated parameters are all-gathered again, bucket by bucket and in place (each rank's part
// of a bucket is where it lies). start_parameter_gather() starts every bucket's gather;
// parameters_needed_below(offset) waits for the buckets that begin below `offset`, which the
// model calls before each layer of the next forward, so the gathers of later layers overlap
// the earlier layers' compute; finish_parameter_gather() waits for the rest (before anything
// else reads the parameters: a checkpoint, an evaluation). all_gather_parameters() is the
// three at once. The same collectives either way, so the values are the same bits.
//
// Overlap with the backward: the model reports "every gradient at flat offset >= o is final"
// as it goes back through the layers (the buffer holds the layers in order, so they become
// final from the end); each bucket starts its non-blocking collective as soon as all of it is
// final, and finish() waits for them all. reduce_gradients() is the same schedule with every
// bucket started after the backward. Both issue the same collectives on the same bucket
// boundaries, so their results are bitwise equal; only when they start differs.
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/memory/arena.hpp"
#include "kernels/tensor.hpp"
#include "parallel/collective_handle.hpp"
#include "parallel/communicator.hpp"

namespace kiln::parallel {

// [begin, end) of the flat buffer.
struct GradientBucket {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t numel() const { return end - begin; }
  bool operator==(const GradientBucket&) const = default;
};

inline constexpr std::size_t kDefaultBucketBytes = 16u << 20;
// Below this a message costs mostly latency: smaller groups (a head of norms only, the layers
// of a toy model) share a bucket with their neighbours.
inline constexpr std::size_t kDefaultMinBucketBytes = 32u << 10;

// Buckets covering [0, numel) in order. `ready_offsets` are where groups of gradients that
// become final together begin (a layer's first parameter); buckets only end at such offsets
// (or at numel). From the end, a bucket takes the next group while it holds less than
// min_bucket_bytes and the group still fits in bucket_bytes, so each layer gets its own bucket
// unless it is small; a group larger than bucket_bytes is cut into pieces from its start.
std::vector<GradientBucket> plan_gradient_buckets(std::span<const std::int64_t> ready_offsets, std::int64_t numel,
                                                  std::size_t element_size, std::size_t bucket_bytes = kDefaultBucketBytes,
                                                  std::size_t min_bucket_bytes = kDefaultMinBucketBytes);

class DataParallel {
 public:
  // Fixed-size buckets from offset 0 (no group structure).
  DataParallel(Communicator& dp, std::int64_t numel, DType dtype, bool zero, std::size_t bucket_bytes = 64u << 20);
  // Buckets planned on the model's ready offsets (see plan_gradient_buckets).
  // `allocator` holds ZeRO's staging: where the gradients and parameters live (a GPU's
  // memory under NCCL).
  DataParallel(Communicator& dp, std::int64_t numel, DType dtype, bool zero, std::span<const std::int64_t> ready_offsets,
               std::size_t bucket_bytes = kDefaultBucketBytes, std::size_t min_bucket_bytes = kDefaultMinBucketBytes,
               memory::Allocator& allocator = memory::host_allocator());

  bool zero() const { return zero_; }
  const std::vector<GradientBucket>& buckets() const { return buckets_; }
  // This rank's shard [begin, end) of the flat buffer (everything without ZeRO).
  std::int64_t shard_begin() const { return shard_begin_; }
  std::int64_t shard_end() const { return shard_end_; }

  // Buckets overlapping [begin, end) wait for finish() even when reported final: gradients
  // another group still adds to after the backward (a tied embedding split over stages).
  void hold_back(std::int64_t begin, std::int64_t end);

  // ---- overlapped schedule ----
  // Starts a step's reduction of `grads` [numel] (valid and untouched, once final, until finish).
  void start(Tensor grads);
  // Every gradient at offset >= `offset` is final: starts the buckets that are now complete,
  // and progresses those in flight.
  void gradients_final_from(std::int64_t offset);
  // Starts what is left, waits for everything; returns what reduce_gradients returns.
  Tensor finish();
  bool in_progress() const { return grads_.defined(); }

  // Without ZeRO: sums `grads` [numel] over dp in place; returns it.
  // With ZeRO: returns this rank's summed shard [shard_end - shard_begin] (a view of an
  // internal buffer, valid until the next call); `grads` is left as it was.
  Tensor reduce_gradients(Tensor grads);
  // ZeRO only (else no-ops): every rank's updated shard of `values` [numel] into all of
  // `values`, which must stay untouched until gathered. The values may have another dtype than
  // the gradients (a bf16 working copy beside f32 gradients).
  void all_gather_parameters(Tensor values);
  void start_parameter_gather(Tensor values);
  void parameters_needed_below(std::int64_t offset);
  void finish_parameter_gather();
  bool gathering_parameters() const { return !gathers_.empty(); }

 private:
  // ZeRO's staging: this rank's reduced gradient shard [shard_size], in a communication arena.
  struct Staging {
    explicit Staging(memory::Allocator& allocator) : arena(memory::MemoryCategory::communication, allocator) {}
    memory::Arena arena;
    Tensor shard;
  };

  void setup_shards(DType dtype);
  void launch(std::size_t bucket);
  std::vector<std::int64_t> shard_counts(const GradientBucket& bucket) const;
  void plan_staging(Staging& staging, DType dtype) const;

  Communicator& dp_;
  std::int64_t numel_;
  bool zero_;
  std::vector<GradientBucket> buckets_;
  std::vector<bool> held_back_;
  std::int64_t shard_size_ = 0;
  std::int64_t shard_begin_ = 0;
  std::int64_t shard_end_ = 0;
  Staging staging_;  // this rank's reduced shard of the gradients (the reduce-scatter's output)

  // The step in flight.
  Tensor grads_;
  std::vector<bool> launched_;
  std::vector<CollectiveHandle> in_flight_;

  // The parameter gather in flight: one handle per bucket, in bucket order (empty: none).
  std::vector<CollectiveHandle> gathers_;
  std::size_t gathered_ = 0;  // buckets [0, gathered_) are complete
};

}  // namespace kiln::parallel
