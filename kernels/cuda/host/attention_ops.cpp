// CUDA backend: attention (kernels/cuda/attention.cu).
#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"

namespace kiln::KILN_CUDA_NS {

namespace {

// A [B, T, H, D] view as the kernels take it: any strides but a unit inner one.
template <class T>
HeadTensor<T> head_tensor(const char* op, const char* name, const Tensor& x) {
  if (x.stride(3) != 1)
    fail("ops::{}: `{}` is {}; the CUDA attention kernel needs the head dim contiguous (stride 1)", op, name, x.str());
  return {static_cast<T*>(x.ptr), x.stride(0), x.stride(1), x.stride(2)};
}

const std::int32_t* document_ids(const char* op, const Tensor& doc_ids) {
  if (!doc_ids.defined()) return nullptr;
  if (doc_ids.dtype != DType::I32 || !doc_ids.is_contiguous())
    fail("ops::{}: `doc_ids` is {}; on the CUDA device document ids are contiguous i32", op, doc_ids.str());
  return device_pointer<const std::int32_t>(doc_ids);
}

AttentionShape attention_shape(const Tensor& q, const Tensor& k, bool causal, double scale) {
  return {q.size(0), q.size(1), k.size(1), q.size(2), k.size(2), q.size(3), causal, static_cast<float>(scale)};
}

}  // namespace

void DeviceBackend::attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                                      bool causal, double scale) {
  constexpr const char* op = "flash_attention_forward";
  float* const lse_data = f32_pointer(op, "lse", lse);
  const std::int32_t* const docs = document_ids(op, doc_ids);
  dispatch_storage(op, q, [&]<class T>(T) {
    const AttentionForward<T> args{head_tensor<T>(op, "out", out), lse_data, head_tensor<const T>(op, "q", q),
                                   head_tensor<const T>(op, "k", k), head_tensor<const T>(op, "v", v), docs};
    KILN_CUDA_NS::attention_forward(attention_shape(q, k, causal, scale), args, compute_);
  });
}

void DeviceBackend::attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                                       Tensor out, Tensor lse, Tensor doc_ids, bool causal, double scale) {
  constexpr const char* op = "flash_attention_backward";
  const float* const lse_data = f32_pointer(op, "lse", lse);
  const std::int32_t* const docs = document_ids(op, doc_ids);
  dispatch_storage(op, q, [&]<class T>(T) {
    const AttentionBackward<T> args{head_tensor<T>(op, "dq", dq),          head_tensor<T>(op, "dk", dk),
                                    head_tensor<T>(op, "dv", dv),          head_tensor<const T>(op, "dout", dout),
                                    head_tensor<const T>(op, "q", q),      head_tensor<const T>(op, "k", k),
                                    head_tensor<const T>(op, "v", v),      head_tensor<const T>(op, "out", out),
                                    lse_data,                              docs};
    KILN_CUDA_NS::attention_backward(attention_shape(q, k, causal, scale), args, compute_);
  });
}

}  // namespace kiln::KILN_CUDA_NS
