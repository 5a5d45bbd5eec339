// CUDA backend: token embedding forward and backward (kernels/cuda/embedding.cu).
#include "kernels/cuda/add_to.hpp"
#include "kernels/cuda/embedding.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"

namespace kiln::KILN_CUDA_NS {

namespace {

const std::int32_t* id_pointer(const char* op, const Tensor& ids, std::int64_t rows) {
  if (ids.dtype != DType::I32 || !ids.is_contiguous() || ids.numel() != rows)
    fail("ops::{}: `ids` is {}; on the CUDA device ids are contiguous i32 [{}]", op, ids.str(), rows);
  return static_cast<const std::int32_t*>(ids.ptr);
}

}  // namespace

void DeviceBackend::embedding_forward(Tensor out, Tensor ids, Tensor table, std::int64_t first_id, bool accumulate) {
  constexpr const char* op = "embedding_forward";
  require_contiguous(op, "out", out);
  const std::int64_t channels = table.size(1), rows = out.numel() / channels;
  const std::int32_t* id = id_pointer(op, ids, rows);
  dispatch_storage(op, table, [&]<class T>(T) {
    // Accumulating (GPT-2's position rows onto the token rows): gather into the workspace, then
    // add, which rounds bf16 twice exactly as the CPU op's two passes do.
    T* target = accumulate ? static_cast<T*>(workspace(out.nbytes())) : device_pointer<T>(out);
    KILN_CUDA_NS::embedding_forward(target, id, device_pointer<const T>(table), table.size(0), first_id, rows, channels,
                                    PositionEmbedding<T>{}, compute_);
    if (accumulate) KILN_CUDA_NS::add_to(device_pointer<T>(out), target, out.numel(), compute_);
  });
}

void DeviceBackend::embedding_backward(Tensor dtable, Tensor dout, Tensor ids, std::int64_t first_id) {
  constexpr const char* op = "embedding_backward";
  require_contiguous(op, "dout", dout);
  const std::int64_t channels = dtable.size(1), rows = dout.numel() / channels;
  const std::int32_t* id = id_pointer(op, ids, rows);
  float* grad = f32_pointer(op, "dtable", dtable);
  dispatch_storage(op, dout, [&]<class T>(T) {
    KILN_CUDA_NS::embedding_backward(grad, dtable.size(0), device_pointer<const T>(dout), id, first_id, rows,
                                     channels, compute_);
  });
}

}  // namespace kiln::KILN_CUDA_NS
