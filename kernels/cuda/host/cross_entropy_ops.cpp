// CUDA backend: the fused softmax cross-entropy, forward and backward (kernels/cuda/cross_entropy.cu).
#include "kernels/cuda/cross_entropy.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"

namespace kiln::KILN_CUDA_NS {

namespace {

const std::int32_t* target_pointer(const char* op, const Tensor& targets, std::int64_t rows) {
  if (targets.dtype != DType::I32 || !targets.is_contiguous() || targets.numel() != rows)
    fail("ops::{}: `targets` is {}; on the CUDA device targets are contiguous i32 [{}]", op, targets.str(), rows);
  return static_cast<const std::int32_t*>(targets.ptr);
}

const std::uint8_t* mask_pointer(const char* op, const Tensor& mask, std::int64_t rows) {
  if (!mask.defined()) return nullptr;
  if (mask.dtype != DType::U8 || !mask.is_contiguous() || mask.numel() != rows)
    fail("ops::{}: `mask` is {}; expected contiguous u8 [{}]", op, mask.str(), rows);
  return static_cast<const std::uint8_t*>(mask.ptr);
}

}  // namespace

void DeviceBackend::cross_entropy_forward(Tensor losses, Tensor lse, Tensor loss_sum, Tensor logits, Tensor targets,
                                          Tensor mask, std::int64_t valid) {
  constexpr const char* op = "cross_entropy_forward";
  require_contiguous(op, "logits", logits);
  const std::int64_t rows = logits.size(0), vocab = logits.size(1);
  // Without a losses tensor the per-row losses land in the workspace: the sum is reduced from them.
  float* loss_rows = losses.defined() ? f32_pointer(op, "losses", losses)
                                      : static_cast<float*>(workspace(static_cast<std::size_t>(rows) * sizeof(float)));
  dispatch_storage(op, logits, [&]<class T>(T) {
    KILN_CUDA_NS::cross_entropy_forward(loss_rows, f32_pointer(op, "lse", lse), device_pointer<double>(loss_sum),
                                        device_pointer<const T>(logits), target_pointer(op, targets, rows),
                                        mask_pointer(op, mask, rows), rows, vocab, valid, compute_);
  });
}

void DeviceBackend::cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse, Tensor mask,
                                           std::int64_t valid, std::int64_t first_id, double grad_scale) {
  constexpr const char* op = "cross_entropy_backward";
  require_contiguous(op, "logits", logits);
  require_contiguous(op, "dlogits", dlogits);
  const std::int64_t rows = logits.size(0), vocab = logits.size(1);
  dispatch_storage(op, logits, [&]<class T>(T) {
    KILN_CUDA_NS::cross_entropy_backward(device_pointer<T>(dlogits), device_pointer<const T>(logits),
                                         target_pointer(op, targets, rows), f32_pointer(op, "lse", lse),
                                         mask_pointer(op, mask, rows), rows, vocab, valid, first_id,
                                         static_cast<float>(grad_scale), compute_);
  });
}

// ---- vocab-parallel statistics ----------------------------------------------------------------

void DeviceBackend::cross_entropy_local_max(Tensor row_max, Tensor logits, std::int64_t valid) {
  constexpr const char* op = "cross_entropy_local_max";
  require_contiguous(op, "logits", logits);
  dispatch_storage(op, logits, [&]<class T>(T) {
    KILN_CUDA_NS::cross_entropy_local_max(f32_pointer(op, "row_max", row_max), device_pointer<const T>(logits),
                                          logits.size(0), logits.size(1), valid, compute_);
  });
}

void DeviceBackend::cross_entropy_local_sums(Tensor sum_exp, Tensor target_logit, Tensor logits, Tensor targets,
                                             Tensor row_max, std::int64_t valid, std::int64_t first_id) {
  constexpr const char* op = "cross_entropy_local_sums";
  require_contiguous(op, "logits", logits);
  const std::int64_t rows = logits.size(0);
  dispatch_storage(op, logits, [&]<class T>(T) {
    KILN_CUDA_NS::cross_entropy_local_sums(f32_pointer(op, "sum_exp", sum_exp),
                                           f32_pointer(op, "target_logit", target_logit),
                                           device_pointer<const T>(logits), target_pointer(op, targets, rows),
                                           f32_pointer(op, "row_max", row_max), rows, logits.size(1), valid,
                                           first_id, compute_);
  });
}

void DeviceBackend::cross_entropy_finish(Tensor losses, Tensor lse, Tensor loss_sum, Tensor row_max, Tensor sum_exp,
                                         Tensor target_logit, Tensor mask) {
  constexpr const char* op = "cross_entropy_finish";
  const std::int64_t rows = lse.numel();
  KILN_CUDA_NS::cross_entropy_finish(losses.defined() ? f32_pointer(op, "losses", losses) : nullptr,
                                     f32_pointer(op, "lse", lse), device_pointer<double>(loss_sum),
                                     f32_pointer(op, "row_max", row_max), f32_pointer(op, "sum_exp", sum_exp),
                                     f32_pointer(op, "target_logit", target_logit), mask_pointer(op, mask, rows), rows,
                                     compute_);
}

}  // namespace kiln::KILN_CUDA_NS
