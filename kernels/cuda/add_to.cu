// Accumulate: y[i] += x[i], i < n (flat, contiguous).
//   y, x [n]   f32, or bf16 storage (fp32 sum, rounded to nearest even once); f64
//              (a handful of scalars: one plain grid-stride loop, no packs)
// No backward of its own: the gradient of y += x passes unchanged to both (ops::add_to).
// It is the residual add with y as its first input (residual_add allows y to alias a), so the
// two share one memory-bound kernel: 16-byte packs, a scalar tail, one thread per element.
#include "kernels/cuda/add_to.hpp"

#include <algorithm>

#include "kernels/cuda/residual_add.hpp"

namespace kiln::KILN_CUDA_NS {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) add_to_f64_kernel(double* y, const double* x, std::int64_t n) {
  for (std::int64_t i = std::int64_t{blockIdx.x} * kThreads + threadIdx.x; i < n; i += std::int64_t{gridDim.x} * kThreads)
    y[i] += x[i];
}

}  // namespace

void add_to(double* y, const double* x, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  if (y == nullptr || x == nullptr) cuda_launch::fail_kernel_argument("add_to_f64_kernel", "y and x must not be null");
  const auto blocks = static_cast<unsigned>(std::min<std::int64_t>((n + kThreads - 1) / kThreads, 1024));
  KILN_LAUNCH(add_to_f64_kernel, dim3(blocks), dim3(kThreads), 0, stream, y, x, n);
}

void add_to(float* y, const float* x, std::int64_t n, cudaStream_t stream) { residual_add(y, y, x, n, stream); }
void add_to(__nv_bfloat16* y, const __nv_bfloat16* x, std::int64_t n, cudaStream_t stream) {
  residual_add(y, y, x, n, stream);
}

}  // namespace kiln::KILN_CUDA_NS
