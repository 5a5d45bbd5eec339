#pragma once
// GEMM on the device, behind one narrow interface (DESIGN.md §7): cuBLASLt on the GPU, a host
// implementation that checks the same argument contract on the emulated device.
//
// Row-major, like ops::matmul:
//   C [m, n] = alpha * op(A) [m, k] * op(B) [k, n] + beta * C  (+ bias [n] on every row)
//   op(X) = X or X^T; A is stored [m, k] (or [k, m] when transposed), B [k, n] (or [n, k]).
// Storage: A and B both f32 (true fp32 math, no TF32: the fp32 path must match the CPU), or
// both bf16 with fp32 accumulation; C f32, or bf16 when A and B are. The bias has C's dtype.
// beta = 0 ignores C's old contents (NaN included). Leading dimensions are row strides in
// elements.
//
// cuBLASLt is column-major: the row-major C is the column-major C^T = op(B)^T op(A)^T, so the
// GPU side hands B as cuBLASLt's A and A as its B. The algorithm is chosen once per shape
// (heuristic, then cached) and runs in the context's one workspace.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

enum class GemmType : std::uint8_t { F32, BF16 };

struct GemmOperand {
  const void* data = nullptr;
  GemmType type = GemmType::F32;
  std::int64_t ld = 0;  // row stride, in elements
};

struct GemmCall {
  bool transpose_a = false, transpose_b = false;
  std::int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
  GemmOperand a, b;
  void* c = nullptr;
  GemmType c_type = GemmType::F32;
  std::int64_t ldc = 0;
  const void* bias = nullptr;  // [n] of c_type, or null
};

// Throws kiln::Error "gemm: <field> ..." when the call breaks the contract cuBLASLt documents
// for this use (positive m, n, k; lds at least the stored row length; non-null, element-aligned
// pointers; a supported dtype combination; C not overlapping A or B). Called by run() on both
// sides; on the emulated device it also requires every pointer to be device memory.
void check_gemm_call(const GemmCall& call);

class GemmContext {
 public:
  explicit GemmContext(std::size_t workspace_bytes = std::size_t{32} << 20);
  ~GemmContext();
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;

  void run(const GemmCall& call, cudaStream_t stream);
  // Distinct shapes whose algorithm has been chosen (each one heuristic query).
  std::size_t cached_algorithms() const;

 private:
  struct Plans;  // cuBLASLt handle, descriptors and chosen algorithms (GPU side)
  std::unique_ptr<Plans> plans_;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
};

}  // namespace kiln::KILN_CUDA_NS
