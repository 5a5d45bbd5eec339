#pragma once
// A checked Batch (batch.hpp) copied to the device the model lives on (DESIGN.md §4).
//
// The CUDA kernels read index tensors as i32 and the loss mask as u8, so the host batch's
// ids (any index dtype), targets, positions and document ids are narrowed to i32 straight into
// a page-locked host buffer laid out as the device buffer is, and sent in one asynchronous
// copy on the compute stream: the upload overlaps the work still queued (the previous
// micro-batch's backward), and the host goes on enqueueing the next forward. Two pinned
// buffers alternate, so filling one never waits for the copy from the other. The device
// buffer is reused between micro-batches (re-allocated only when [B, T] grows): the stream
// runs the copy after every kernel queued before it. On the host device nothing is copied:
// view() is the batch itself. Run check_batch_values first (MicroBatch / BatchInputs do):
// after the copy the values are never read on the host again, and a kernel cannot refuse an id.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/cuda/backend.hpp"
#include "kernels/memory/allocator.hpp"
#include "kernels/memory/device_buffer.hpp"
#include "kernels/tensor.hpp"
#include "trainer/model/batch.hpp"

namespace kiln::model {

class DeviceBatch {
 public:
  explicit DeviceBatch(memory::Allocator& allocator) : allocator_(&allocator) {}

  // The batch on the allocator's device, valid until the next upload (or, on the host, while
  // `host` lives).
  const Batch& upload(const Batch& host);

 private:
  memory::Allocator* allocator_;
  memory::DeviceBuffer memory_;  // tokens, targets, positions, doc ids (i32), then the mask (u8)
  std::array<std::unique_ptr<cuda_backend::CudaBackend::PinnedUpload>, 2> pinned_;
  int next_pinned_ = 0;
  Batch device_;
};

}  // namespace kiln::model
