#pragma once
// Test tensors on the CUDA device (the active backend: emulated here, the GPU in
// kiln_cuda_tests), uploaded and read back through ops::copy, and the values a device
// tensor of a given dtype really holds.
#include <algorithm>
#include <vector>

#include "kernels/cuda/backend.hpp"
#include "kernels/memory/device_buffer.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {

// A tensor on the CUDA device holding `values` (rounded once when dtype is bf16), uploaded
// through ops::copy; owns its device memory.
struct DeviceTensor {
  memory::DeviceBuffer buffer;
  Tensor tensor;

  DeviceTensor(DType dtype, Shape shape)
      : buffer(static_cast<std::size_t>(shape.numel()) * dtype_size(dtype), memory::MemoryCategory::workspace,
               cuda_backend::cuda_allocator()),
        tensor(buffer.view(dtype, shape)) {}
  DeviceTensor(const std::vector<float>& values, DType dtype, Shape shape) : DeviceTensor(dtype, shape) {
    OwnedTensor host(DType::F32, shape);
    std::copy(values.begin(), values.end(), host.data<float>());
    ops::copy(tensor, host);
  }
  operator Tensor() const { return tensor; }  // NOLINT(google-explicit-constructor)

  std::vector<float> download() const {
    OwnedTensor host(DType::F32, tensor.shape);
    ops::copy(host, tensor);
    return {host.data<float>(), host.data<float>() + host.numel()};
  }
};

// What the device sees of `values` in `dtype`: bf16 rounds them once.
inline std::vector<float> as_stored(const std::vector<float>& values, DType dtype) {
  return dtype == DType::BF16 ? to_f32(to_bf16(values)) : values;
}

inline OwnedTensor host_f64(const std::vector<float>& values, Shape shape) { return f64_of(values, shape); }

}  // namespace kiln::cuda_test
