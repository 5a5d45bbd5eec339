// CUDA backend: copies between strides, dtype conversion, residual adds, GELU and SwiGLU
// (kernels/cuda/{strided_copy,cast,residual_add,add_to,gelu,swiglu}.cu).
#include <algorithm>

#include "kernels/cuda/add_to.hpp"
#include "kernels/cuda/cast.hpp"
#include "kernels/cuda/gelu.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"
#include "kernels/cuda/residual_add.hpp"
#include "kernels/cuda/strided_copy.hpp"
#include "kernels/cuda/swiglu.hpp"

namespace kiln::KILN_CUDA_NS {

namespace {

// Both sides' strides over the shape, right-aligned into the kernel's fixed number of dims.
StridedCopyLayout strided_copy_layout(const Tensor& dst, const Tensor& src) {
  if (src.rank() > kStridedCopyDims)
    fail("ops::copy: {} has more than {} dims; the CUDA strided copy takes at most that many", src.str(),
         kStridedCopyDims);
  StridedCopyLayout layout;
  const int unused = kStridedCopyDims - src.rank();
  for (int d = 0; d < kStridedCopyDims; ++d) {
    const bool used = d >= unused;
    layout.shape[d] = used ? src.size(d - unused) : 1;
    layout.dst_strides[d] = used ? dst.stride(d - unused) : 0;
    layout.src_strides[d] = used ? src.stride(d - unused) : 0;
  }
  return layout;
}

}  // namespace

void DeviceBackend::convert(Tensor dst, Tensor src) {
  if (dst.dtype == src.dtype && dst.is_contiguous() && src.is_contiguous())
    return copy_on_device(dst.ptr, src.ptr, src.nbytes());
  if (dst.dtype == src.dtype) {
    if (src.numel() == 0) return;
    return strided_copy(dst.ptr, src.ptr, src.element_size(), strided_copy_layout(dst, src), compute_);
  }
  require_contiguous("copy", "dst", dst);
  require_contiguous("copy", "src", src);
  if (dst.dtype == DType::BF16 && src.dtype == DType::F32)
    return cast(device_pointer<__nv_bfloat16>(dst), device_pointer<const float>(src), src.numel(), compute_);
  if (dst.dtype == DType::F32 && src.dtype == DType::BF16)
    return cast(device_pointer<float>(dst), device_pointer<const __nv_bfloat16>(src), src.numel(), compute_);
  fail("ops::copy: {} -> {} on the CUDA device: only f32 <-> bf16 convert there (or equal dtypes copy)", src.str(),
       dst.str());
}

void DeviceBackend::add(Tensor out, Tensor a, Tensor b) {
  for (const auto& [name, t] : {std::pair{"out", out}, {"a", a}, {"b", b}}) require_contiguous("add", name, t);
  dispatch_storage("add", out, [&]<class T>(T) {
    residual_add(device_pointer<T>(out), device_pointer<const T>(a), device_pointer<const T>(b), out.numel(), compute_);
  });
}

void DeviceBackend::add_to(Tensor dst, Tensor src) {
  require_contiguous("add_to", "dst", dst);
  require_contiguous("add_to", "src", src);
  if (dst.dtype == DType::F64 && src.dtype == DType::F64)  // loss sums
    return KILN_CUDA_NS::add_to(device_pointer<double>(dst), device_pointer<const double>(src), dst.numel(), compute_);
  dispatch_storage("add_to", dst, [&]<class T>(T) {
    KILN_CUDA_NS::add_to(device_pointer<T>(dst), device_pointer<const T>(src), dst.numel(), compute_);
  });
}

void DeviceBackend::gelu_forward(Tensor y, Tensor x) {
  require_contiguous("gelu_forward", "y", y);
  require_contiguous("gelu_forward", "x", x);
  dispatch_storage("gelu_forward", y, [&]<class T>(T) {
    KILN_CUDA_NS::gelu_forward(device_pointer<T>(y), device_pointer<const T>(x), y.numel(), compute_);
  });
}

void DeviceBackend::gelu_backward(Tensor dx, Tensor dy, Tensor x, bool accumulate_dx) {
  for (const auto& [name, t] : {std::pair{"dx", dx}, {"dy", dy}, {"x", x}}) require_contiguous("gelu_backward", name, t);
  dispatch_storage("gelu_backward", dx, [&]<class T>(T) {
    KILN_CUDA_NS::gelu_backward(device_pointer<T>(dx), device_pointer<const T>(dy), device_pointer<const T>(x),
                                dx.numel(), accumulate_dx, compute_);
  });
}

void DeviceBackend::swiglu_forward(Tensor out, Tensor gate_up) {
  require_contiguous("swiglu_forward", "out", out);
  dispatch_storage("swiglu_forward", out, [&]<class T>(T) {
    KILN_CUDA_NS::swiglu_forward(device_pointer<T>(out), device_pointer<const T>(gate_up), row_count(out),
                                 out.size(-1), compute_);
  });
}

void DeviceBackend::swiglu_backward(Tensor dgate_up, Tensor dout, Tensor gate_up) {
  require_contiguous("swiglu_backward", "dout", dout);
  dispatch_storage("swiglu_backward", dout, [&]<class T>(T) {
    KILN_CUDA_NS::swiglu_backward(device_pointer<T>(dgate_up), device_pointer<const T>(dout),
                                  device_pointer<const T>(gate_up), row_count(dout), dout.size(-1), compute_);
  });
}

}  // namespace kiln::KILN_CUDA_NS
