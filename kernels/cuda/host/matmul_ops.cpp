// CUDA backend: GEMMs (kernels/cuda/gemm.*) for ops::matmul and the linear layers, and the
// bias gradient as a GEMM with a ones vector.
#include <vector>

#include "kernels/cpu/bf16.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"

namespace kiln::KILN_CUDA_NS {

namespace {

GemmType gemm_type(const char* name, DType dtype) {
  if (dtype == DType::F32) return GemmType::F32;
  if (dtype == DType::BF16) return GemmType::BF16;
  fail("ops::matmul: `{}` is {}; the CUDA GEMM takes f32 or bf16", name, dtype_name(dtype));
}

GemmOperand operand(const char* name, const cuda_backend::RowMatrix& x) {
  return {x.data, gemm_type(name, x.dtype), x.stride};
}

}  // namespace

GemmContext& DeviceBackend::gemm() {
  if (!gemm_) gemm_ = std::make_unique<GemmContext>();
  return *gemm_;
}

void DeviceBackend::matmul(cuda_backend::RowMatrix c, cuda_backend::RowMatrix a, cuda_backend::RowMatrix b,
                           bool transpose_a, bool transpose_b, double alpha, double beta, const void* bias) {
  GemmCall call;
  call.transpose_a = transpose_a;
  call.transpose_b = transpose_b;
  call.m = c.rows;
  call.n = c.cols;
  call.k = transpose_a ? a.rows : a.cols;
  call.alpha = static_cast<float>(alpha);
  call.beta = static_cast<float>(beta);
  call.a = operand("a", a);
  call.b = operand("b", b);
  call.c = c.data;
  call.c_type = gemm_type("c", c.dtype);
  call.ldc = c.stride;
  call.bias = bias;
  gemm().run(call, compute_);
}

const void* DeviceBackend::ones(DType dtype, std::int64_t count) {
  if (count > ones_count_) {
    // Grows to the largest row count (tokens per micro-batch), then stays.
    for (void* old : {ones_f32_, ones_bf16_})
      if (old) free(old);
    const auto n = static_cast<std::size_t>(count);
    ones_f32_ = allocate(n * sizeof(float));
    ones_bf16_ = allocate(n * sizeof(std::uint16_t));
    const std::vector<float> f32(n, 1.0f);
    const std::vector<std::uint16_t> bf16(n, cpu::float_to_bf16_bits(1.0f));
    copy_to_device(ones_f32_, f32.data(), n * sizeof(float));
    copy_to_device(ones_bf16_, bf16.data(), n * sizeof(std::uint16_t));
    ones_count_ = count;
  }
  return dtype == DType::BF16 ? ones_bf16_ : ones_f32_;
}

// sums [1, n] += ones [1, rows] x [rows, n]: the GEMM reduces in a fixed order, so the bias
// gradient does not depend on scheduling.
void DeviceBackend::add_column_sums(Tensor sums, cuda_backend::RowMatrix x) {
  const cuda_backend::RowMatrix ones_row{const_cast<void*>(ones(x.dtype, x.rows)), x.dtype, 1, x.rows, x.rows};
  const cuda_backend::RowMatrix sums_row{f32_pointer("linear_backward", "db", sums), DType::F32, 1, x.cols, x.cols};
  matmul(sums_row, ones_row, x, false, false, 1.0, 1.0, nullptr);
}

}  // namespace kiln::KILN_CUDA_NS
