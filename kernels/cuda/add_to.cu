// Accumulate: y[i] += x[i], i < n (flat, contiguous).
//   y, x [n]   f32, or bf16 storage (fp32 sum, rounded to nearest even once)
// No backward of its own: the gradient of y += x passes unchanged to both (ops::add_to).
// It is the residual add with y as its first input (residual_add allows y to alias a), so the
// two share one memory-bound kernel: 16-byte packs, a scalar tail, one thread per element.
#include "kernels/cuda/add_to.hpp"

#include "kernels/cuda/residual_add.hpp"

namespace kiln::KILN_CUDA_NS {

void add_to(float* y, const float* x, std::int64_t n, cudaStream_t stream) { residual_add(y, y, x, n, stream); }
void add_to(__nv_bfloat16* y, const __nv_bfloat16* x, std::int64_t n, cudaStream_t stream) {
  residual_add(y, y, x, n, stream);
}

}  // namespace kiln::KILN_CUDA_NS
