#include "trainer/model/device_batch.hpp"

#include <algorithm>
#include <vector>

#include "kernels/ops.hpp"
#include "trainer/core/error.hpp"

namespace kiln::model {

namespace {

// Bytes for four i32 [B, T] tensors and one u8 [B, T] mask, each aligned to 256 bytes (the
// kernels' vector loads want aligned rows).
constexpr std::size_t kAlign = 256;
std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

}  // namespace

Tensor DeviceBatch::stage(const Tensor& host, DType dtype, std::size_t byte_offset) {
  if (!host.defined()) return {};
  const Tensor device = memory_.view(dtype, host.shape, byte_offset);
  if (host.dtype == dtype) {
    ops::copy(device, host);
    return device;
  }
  // Index dtypes narrow to i32 (check_batch_values bounded them by the vocabulary and
  // max_seq_len, both far below 2^31).
  const std::vector<std::int64_t> values = index_values(host, "device batch");
  OwnedTensor narrowed(DType::I32, host.shape);
  std::transform(values.begin(), values.end(), narrowed.data<std::int32_t>(),
                 [](std::int64_t v) { return static_cast<std::int32_t>(v); });
  ops::copy(device, narrowed);
  return device;
}

const Batch& DeviceBatch::upload(const Batch& host) {
  if (allocator_->device() == Device::Cpu) {
    device_ = host;
    return device_;
  }
  if (!host.tokens.defined() || !host.positions.defined())
    fail("device batch: a batch needs tokens and positions before it is copied to the device");
  const auto count = static_cast<std::size_t>(host.tokens.numel());
  const std::size_t index_bytes = aligned(count * sizeof(std::int32_t));
  const std::size_t needed = 4 * index_bytes + aligned(count);
  if (memory_.size() < needed)
    memory_ = memory::DeviceBuffer(needed, memory::MemoryCategory::workspace, *allocator_);
  device_ = Batch{};
  device_.tokens = stage(host.tokens, DType::I32, 0);
  device_.targets = stage(host.targets, DType::I32, index_bytes);
  device_.positions = stage(host.positions, DType::I32, 2 * index_bytes);
  device_.doc_ids = stage(host.doc_ids, DType::I32, 3 * index_bytes);
  device_.loss_mask = stage(host.loss_mask, DType::U8, 4 * index_bytes);
  return device_;
}

}  // namespace kiln::model
