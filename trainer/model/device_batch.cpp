#include "trainer/model/device_batch.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::model {

namespace {

// Bytes for four i32 [B, T] tensors and one u8 [B, T] mask, each aligned to 256 bytes (the
// kernels' vector loads want aligned rows).
constexpr std::size_t kAlign = 256;
std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// `host` as `dtype` (i32 or u8) at `at`: copied when it already is, else narrowed from its
// index values (check_batch_values bounded ids by the vocabulary and positions by
// max_seq_len, both far below 2^31; mask values are 0 or 1).
void write_narrowed(std::byte* at, const Tensor& host, DType dtype) {
  if (host.dtype == dtype && host.is_contiguous()) {
    std::memcpy(at, host.ptr, host.nbytes());
    return;
  }
  const std::vector<std::int64_t> values = index_values(host, "device batch");
  if (dtype == DType::I32) {
    auto* out = reinterpret_cast<std::int32_t*>(at);
    std::transform(values.begin(), values.end(), out, [](std::int64_t v) { return static_cast<std::int32_t>(v); });
  } else {
    auto* out = reinterpret_cast<std::uint8_t*>(at);
    std::transform(values.begin(), values.end(), out, [](std::int64_t v) { return static_cast<std::uint8_t>(v); });
  }
}

// The runs of the batch's doc_ids (one per row without them), read while they are on the host.
std::shared_ptr<const ops::DocumentRuns> document_runs_of(const Batch& host) {
  const std::vector<std::int64_t> ids =
      host.doc_ids.defined() ? index_values(host.doc_ids, "device batch") : std::vector<std::int64_t>{};
  return std::make_shared<const ops::DocumentRuns>(
      ops::document_runs(ids, host.tokens.size(0), host.tokens.size(1)));
}

}  // namespace

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
  auto& pinned = pinned_[static_cast<std::size_t>(next_pinned_)];
  next_pinned_ ^= 1;
  if (!pinned) pinned = cuda_backend::active_backend("device batch").make_pinned_upload();
  auto* staging = static_cast<std::byte*>(pinned->host(needed));
  device_ = Batch{};
  const auto place = [&](const Tensor& source, DType dtype, std::size_t offset) -> Tensor {
    if (!source.defined()) return {};
    write_narrowed(staging + offset, source, dtype);
    return memory_.view(dtype, source.shape, offset);
  };
  device_.tokens = place(host.tokens, DType::I32, 0);
  device_.targets = place(host.targets, DType::I32, index_bytes);
  device_.positions = place(host.positions, DType::I32, 2 * index_bytes);
  device_.doc_ids = place(host.doc_ids, DType::I32, 3 * index_bytes);
  device_.loss_mask = place(host.loss_mask, DType::U8, 4 * index_bytes);
  device_.documents = host.documents ? host.documents : document_runs_of(host);
  device_.context = host.context;
  pinned->upload(memory_.data(), needed);
  return device_;
}

}  // namespace kiln::model
