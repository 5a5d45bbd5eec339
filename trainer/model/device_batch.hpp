#pragma once
// A checked Batch (batch.hpp) copied to the device the model lives on (DESIGN.md §4).
//
// The CUDA kernels read index tensors as i32 and the loss mask as u8, so the host batch's
// ids (any index dtype), targets, positions and document ids are narrowed to i32 on the host
// and copied, with the mask, into device buffers kept between micro-batches (re-allocated
// only when [B, T] grows). On the host device nothing is copied: view() is the batch itself.
// Run check_batch_values first (MicroBatch / BatchInputs do): after the copy the values are
// never read on the host again, and a kernel cannot refuse an id.
#include <cstdint>

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
  Tensor stage(const Tensor& host, DType dtype, std::size_t byte_offset);

  memory::Allocator* allocator_;
  memory::DeviceBuffer memory_;  // tokens, targets, positions, doc ids (i32), then the mask (u8)
  Batch device_;
};

}  // namespace kiln::model
