#include "parallel/data_parallel.hpp"

#include <algorithm>
#include <optional>

#include "trainer/core/error.hpp"

namespace kiln::parallel {

namespace {

// Groups [offset_i, offset_i+1) of [0, numel), from the sorted, de-duplicated offsets.
std::vector<GradientBucket> ready_groups(std::span<const std::int64_t> ready_offsets, std::int64_t numel) {
  std::vector<std::int64_t> cuts{0};
  for (const std::int64_t offset : ready_offsets) {
    if (offset < 0 || offset > numel) fail("data parallel: ready offset {} outside the {} gradients", offset, numel);
    cuts.push_back(offset);
  }
  cuts.push_back(numel);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  std::vector<GradientBucket> groups;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) groups.push_back({cuts[i], cuts[i + 1]});
  return groups;
}

}  // namespace

std::vector<GradientBucket> plan_gradient_buckets(std::span<const std::int64_t> ready_offsets, std::int64_t numel,
                                                  std::size_t element_size, std::size_t bucket_bytes,
                                                  std::size_t min_bucket_bytes) {
  const auto cap = std::max<std::int64_t>(1, static_cast<std::int64_t>(bucket_bytes / element_size));
  const auto enough = static_cast<std::int64_t>(min_bucket_bytes / element_size);
  std::vector<GradientBucket> descending;  // built from the end, the order they become final
  std::optional<GradientBucket> open;
  const auto close = [&] {
    if (open) descending.push_back(*open);
    open.reset();
  };
  const auto groups = ready_groups(ready_offsets, numel);
  for (auto group = groups.rbegin(); group != groups.rend(); ++group) {
    if (group->numel() > cap) {
      close();
      std::vector<GradientBucket> pieces;
      for (std::int64_t begin = group->begin; begin < group->end; begin += cap) {
        pieces.push_back({begin, std::min(group->end, begin + cap)});
      }
      descending.insert(descending.end(), pieces.rbegin(), pieces.rend());
    } else if (open && open->numel() < enough && open->numel() + group->numel() <= cap) {
      open->begin = group->begin;
    } else {
      close();
      open = *group;
    }
  }
  close();
  return {descending.rbegin(), descending.rend()};
}

DataParallel::DataParallel(Communicator& dp, std::int64_t numel, DType dtype, bool zero, std::size_t bucket_bytes)
    : DataParallel(dp, numel, dtype, zero, std::span<const std::int64_t>{}, bucket_bytes, bucket_bytes) {}

DataParallel::DataParallel(Communicator& dp, std::int64_t numel, DType dtype, bool zero,
                           std::span<const std::int64_t> ready_offsets, std::size_t bucket_bytes,
                           std::size_t min_bucket_bytes, memory::Allocator& allocator)
    : dp_(dp), numel_(numel), zero_(zero && dp.size() > 1),
      buckets_(plan_gradient_buckets(ready_offsets, numel, dtype_size(dtype), bucket_bytes, min_bucket_bytes)),
      held_back_(buckets_.size(), false), staging_(allocator) {
  shard_end_ = numel_;
  if (zero_) setup_shards(dtype);
}

void DataParallel::setup_shards(DType dtype) {
  shard_size_ = (numel_ + dp_.size() - 1) / dp_.size();
  shard_begin_ = std::min(numel_, shard_size_ * dp_.rank());
  shard_end_ = std::min(numel_, shard_begin_ + shard_size_);
  plan_staging(staging_, dtype);
}

void DataParallel::plan_staging(Staging& staging, DType dtype) const {
  memory::ArenaPlan plan;
  const memory::ArenaSlot shard = plan.reserve("shard", dtype, {shard_size_});
  staging.arena.allocate(std::move(plan));
  staging.shard = staging.arena.view(shard);
}

void DataParallel::hold_back(std::int64_t begin, std::int64_t end) {
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    if (buckets_[i].begin < end && begin < buckets_[i].end) held_back_[i] = true;
  }
}

void DataParallel::start(Tensor grads) {
  if (in_progress()) fail("data parallel: a gradient reduction is already in progress (finish() it first)");
  if (grads.numel() != numel_) fail("data parallel: {} gradients, expected {}", grads.numel(), numel_);
  grads_ = grads;
  launched_.assign(buckets_.size(), false);
  in_flight_.clear();
}

void DataParallel::gradients_final_from(std::int64_t offset) {
  if (!in_progress()) fail("data parallel: gradients reported final with no reduction started");
  // From the last bucket down: the same order on every dp rank, since every rank reports the
  // same offsets (same stage, same layers).
  for (std::size_t i = buckets_.size(); i-- > 0 && buckets_[i].begin >= offset;) {
    if (!launched_[i] && !held_back_[i]) launch(i);
  }
  for (auto& handle : in_flight_) handle.test();
}

Tensor DataParallel::finish() {
  if (!in_progress()) fail("data parallel: finish() with no reduction started");
  for (std::size_t i = buckets_.size(); i-- > 0;) {
    if (!launched_[i]) launch(i);
  }
  const Tensor grads = grads_;
  grads_ = {};
  for (auto& handle : in_flight_) handle.wait();
  in_flight_.clear();
  if (!zero_) return grads;
  return staging_.shard.narrow(0, 0, shard_end_ - shard_begin_);
}

Tensor DataParallel::reduce_gradients(Tensor grads) {
  start(grads);
  return finish();
}

// Rank r's part of a bucket is the bucket's overlap with r's shard [r * S, (r + 1) * S).
std::vector<std::int64_t> DataParallel::shard_counts(const GradientBucket& bucket) const {
  std::vector<std::int64_t> counts;
  for (int r = 0; r < dp_.size(); ++r) {
    const std::int64_t begin = std::max(bucket.begin, shard_size_ * r);
    const std::int64_t end = std::min(bucket.end, shard_size_ * (r + 1));
    counts.push_back(std::max<std::int64_t>(0, end - begin));
  }
  return counts;
}

void DataParallel::launch(std::size_t index) {
  launched_[index] = true;
  const GradientBucket& bucket = buckets_[index];
  const Tensor values = grads_.narrow(0, bucket.begin, bucket.numel());
  if (!zero_) {
    in_flight_.push_back(dp_.all_reduce_async(values));
    return;
  }
  const auto counts = shard_counts(bucket);
  const std::int64_t mine = counts[static_cast<std::size_t>(dp_.rank())];
  const std::int64_t at = mine > 0 ? std::max(bucket.begin, shard_begin_) - shard_begin_ : 0;
  in_flight_.push_back(dp_.reduce_scatter_async(staging_.shard.narrow(0, at, mine), values, counts));
}

void DataParallel::all_gather_parameters(Tensor values) {
  start_parameter_gather(values);
  finish_parameter_gather();
}

// Bucket by bucket, in the order the next forward needs them.
void DataParallel::start_parameter_gather(Tensor values) {
  if (!zero_) return;
  if (values.numel() != numel_) fail("data parallel: {} parameter values, expected {}", values.numel(), numel_);
  if (gathering_parameters()) fail("data parallel: a parameter gather is already in flight");
  for (const GradientBucket& bucket : buckets_)
    gathers_.push_back(dp_.all_gather_async(values.narrow(0, bucket.begin, bucket.numel()), shard_counts(bucket)));
  gathered_ = 0;
}

void DataParallel::parameters_needed_below(std::int64_t offset) {
  while (gathered_ < gathers_.size() && buckets_[gathered_].begin < offset) gathers_[gathered_++].wait();
  if (gathered_ == gathers_.size()) gathers_.clear();
}

void DataParallel::finish_parameter_gather() { parameters_needed_below(numel_); }

}  // namespace kiln::parallel
