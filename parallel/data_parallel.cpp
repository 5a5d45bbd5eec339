#include "parallel/data_parallel.hpp"

#include <algorithm>
#include <cstring>

#include "trainer/core/error.hpp"

namespace kiln::parallel {

DataParallel::DataParallel(Communicator& dp, std::int64_t numel, DType dtype, bool zero, std::size_t bucket_bytes)
    : dp_(dp), numel_(numel), zero_(zero && dp.size() > 1),
      bucket_elements_(std::max<std::int64_t>(1, static_cast<std::int64_t>(bucket_bytes / dtype_size(dtype)))) {
  shard_end_ = numel_;
  if (!zero_) return;
  shard_size_ = (numel_ + dp.size() - 1) / dp.size();
  shard_begin_ = std::min(numel_, shard_size_ * dp.rank());
  shard_end_ = std::min(numel_, shard_begin_ + shard_size_);
  padded_ = OwnedTensor(dtype, {shard_size_ * dp.size()});
  shard_ = OwnedTensor(dtype, {shard_size_});
}

Tensor DataParallel::reduce_gradients(Tensor grads) {
  if (grads.numel() != numel_) fail("data parallel: {} gradients, expected {}", grads.numel(), numel_);
  if (!zero_) {
    for (std::int64_t offset = 0; offset < numel_; offset += bucket_elements_) {
      dp_.all_reduce(grads.narrow(0, offset, std::min(bucket_elements_, numel_ - offset)));
    }
    return grads;
  }
  const Tensor padded = padded_.tensor();
  std::memcpy(padded.ptr, grads.ptr, grads.nbytes());
  std::memset(static_cast<std::byte*>(padded.ptr) + grads.nbytes(), 0, padded.nbytes() - grads.nbytes());
  dp_.reduce_scatter(shard_, padded);
  return shard_.tensor().narrow(0, 0, shard_end_ - shard_begin_);
}

void DataParallel::all_gather_parameters(Tensor values) {
  if (!zero_) return;
  const std::size_t element = values.element_size();
  const auto owned = static_cast<std::size_t>(shard_end_ - shard_begin_);
  std::memcpy(shard_.tensor().ptr, static_cast<std::byte*>(values.ptr) + static_cast<std::size_t>(shard_begin_) * element,
              owned * element);
  dp_.all_gather(padded_, shard_);
  std::memcpy(values.ptr, padded_.tensor().ptr, values.nbytes());
}

}  // namespace kiln::parallel
