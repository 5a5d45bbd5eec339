// CUDA backend: LayerNorm and RMSNorm, forward and backward (kernels/cuda/{layernorm,rmsnorm,rmsnorm_backward}.cu).
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"
#include "kernels/cuda/layernorm.hpp"
#include "kernels/cuda/rmsnorm.hpp"
#include "kernels/cuda/rmsnorm_backward.hpp"

namespace kiln::KILN_CUDA_NS {

void DeviceBackend::layernorm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b, double eps) {
  constexpr const char* op = "layernorm_forward";
  for (const auto& [name, t] : {std::pair{"y", y}, {"x", x}, {"w", w}, {"b", b}}) require_contiguous(op, name, t);
  dispatch_storage(op, x, [&]<class T>(T) {
    KILN_CUDA_NS::layernorm_forward(device_pointer<T>(y), f32_pointer(op, "mean", mean), f32_pointer(op, "rstd", rstd),
                                    device_pointer<const T>(x), device_pointer<const T>(w), device_pointer<const T>(b),
                                    row_count(x), x.size(-1), static_cast<float>(eps), compute_);
  });
}

void DeviceBackend::layernorm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Tensor mean,
                                       Tensor rstd, bool accumulate_dx) {
  constexpr const char* op = "layernorm_backward";
  for (const auto& [name, t] : {std::pair{"dx", dx}, {"dy", dy}, {"x", x}, {"w", w}}) require_contiguous(op, name, t);
  const std::int64_t rows = row_count(x), channels = x.size(-1);
  const std::size_t bytes = layernorm_backward_workspace_bytes(rows, channels);
  void* scratch = workspace(bytes);
  dispatch_storage(op, x, [&]<class T>(T) {
    KILN_CUDA_NS::layernorm_backward(device_pointer<T>(dx), f32_pointer(op, "dw", dw), f32_pointer(op, "db", db),
                                     device_pointer<const T>(dy), device_pointer<const T>(x),
                                     device_pointer<const T>(w), f32_pointer(op, "mean", mean),
                                     f32_pointer(op, "rstd", rstd), rows, channels, accumulate_dx, scratch, bytes,
                                     compute_);
  });
}

void DeviceBackend::rmsnorm_forward(Tensor y, Tensor rstd, Tensor x, Tensor w, double eps) {
  constexpr const char* op = "rmsnorm_forward";
  for (const auto& [name, t] : {std::pair{"y", y}, {"x", x}, {"w", w}}) require_contiguous(op, name, t);
  dispatch_storage(op, x, [&]<class T>(T) {
    KILN_CUDA_NS::rmsnorm_forward(device_pointer<T>(y), f32_pointer(op, "rstd", rstd), device_pointer<const T>(x),
                                  device_pointer<const T>(w), row_count(x), x.size(-1), static_cast<float>(eps),
                                  compute_);
  });
}

void DeviceBackend::rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, Tensor rstd,
                                     bool accumulate_dx) {
  constexpr const char* op = "rmsnorm_backward";
  for (const auto& [name, t] : {std::pair{"dx", dx}, {"dy", dy}, {"x", x}, {"w", w}}) require_contiguous(op, name, t);
  const std::int64_t rows = row_count(x), channels = x.size(-1);
  const std::size_t bytes = dw.defined() ? rmsnorm_backward_workspace_bytes(rows, channels) : 0;
  void* scratch = bytes > 0 ? workspace(bytes) : nullptr;
  dispatch_storage(op, x, [&]<class T>(T) {
    KILN_CUDA_NS::rmsnorm_backward(device_pointer<T>(dx), f32_pointer(op, "dw", dw), device_pointer<const T>(dy),
                                   device_pointer<const T>(x), device_pointer<const T>(w),
                                   f32_pointer(op, "rstd", rstd), rows, channels, accumulate_dx, scratch, bytes,
                                   compute_);
  });
}

}  // namespace kiln::KILN_CUDA_NS
