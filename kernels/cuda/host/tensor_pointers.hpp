#pragma once
// Tensor -> kernel pointer, for the CUDA backend's host side. kiln::ops has checked shapes and
// dtypes; what is left to check here is what only the CUDA kernels need: contiguity (they take
// flat pointers) and the storage dtypes they are written for (f32, bf16).
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"

namespace kiln::KILN_CUDA_NS {

inline void require_contiguous(const char* op, const char* name, const Tensor& tensor) {
  if (tensor.defined() && !tensor.is_contiguous())
    fail("ops::{}: `{}` is {}; the CUDA kernel takes contiguous tensors", op, name, tensor.str());
}

// Storage dtype -> C++ element type of the kernels: f32 -> float, bf16 -> __nv_bfloat16.
template <class Fn>
void dispatch_storage(const char* op, const Tensor& tensor, Fn&& fn) {
  if (tensor.dtype == DType::F32) return fn(float{});
  if (tensor.dtype == DType::BF16) return fn(__nv_bfloat16{});
  fail("ops::{}: `{}` is {}; the CUDA backend stores f32 or bf16", op, "x", tensor.str());
}

template <class T>
T* device_pointer(const Tensor& tensor) {
  return static_cast<T*>(tensor.ptr);
}

// f32 statistics (mean, rstd), parameter gradients and reduction results.
inline float* f32_pointer(const char* op, const char* name, const Tensor& tensor) {
  if (!tensor.defined()) return nullptr;
  if (tensor.dtype != DType::F32)
    fail("ops::{}: `{}` is {}; on the CUDA device it must be f32", op, name, tensor.str());
  require_contiguous(op, name, tensor);
  return static_cast<float*>(tensor.ptr);
}

inline std::int64_t row_count(const Tensor& tensor) {
  return tensor.numel() / std::max<std::int64_t>(tensor.size(-1), 1);
}

}  // namespace kiln::KILN_CUDA_NS
