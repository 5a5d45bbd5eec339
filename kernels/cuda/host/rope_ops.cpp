// CUDA backend: rotary position embedding (kernels/cuda/rope.cu).
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"
#include "kernels/cuda/rope.hpp"

namespace kiln::KILN_CUDA_NS {

void DeviceBackend::rope(Tensor y, Tensor x, Tensor positions, const double* inv_freq, int direction) {
  constexpr const char* op = "rope";
  if (positions.dtype != DType::I32 || !positions.is_contiguous())
    fail("ops::{}: `positions` is {}; on the CUDA device positions are contiguous i32", op, positions.str());
  if (y.strides != x.strides)
    fail("ops::{}: `y` {} and `x` {} must share one layout on the CUDA device", op, y.str(), x.str());
  const RopeLayout layout{x.size(0), x.size(1), x.size(2), x.size(3), x.stride(0), x.stride(1), x.stride(2)};
  const auto* table = static_cast<const double*>(
      stage_table(inv_freq, static_cast<std::size_t>(layout.head_dim / 2) * sizeof(double)));
  const auto* ids = device_pointer<const std::int32_t>(positions);
  dispatch_storage(op, x, [&]<class T>(T) {
    if (direction > 0) {
      rope_forward(device_pointer<T>(y), device_pointer<const T>(x), layout, ids, table, compute_);
    } else {
      rope_backward(device_pointer<T>(y), device_pointer<const T>(x), layout, ids, table, compute_);
    }
  });
}

}  // namespace kiln::KILN_CUDA_NS
