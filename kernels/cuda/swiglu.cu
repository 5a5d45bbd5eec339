// SwiGLU forward and backward on the fused gate|up layout.
//   gate_up [rows, 2F] (gate | up halves of each row), out and dout [rows, F],
//   dgate_up [rows, 2F] (dgate | dup), F = hidden
//   forward:  out = g s u,  s = sigmoid(g)
//   backward: dgate = dout u s (1 + g (1 - s)),  dup = dout g s
// f32, or bf16 storage (fp32 math, rounded to nearest even once per stored value).
// A thread takes one group of F-contiguous elements at a time in a grid-stride loop over
// rows x F: a 16-byte pack (4 f32, 8 bf16) when F is a multiple of the pack width and every
// pointer is 16-byte aligned (then every half-row start is too), one element otherwise.
// sigmoid(g) = 1 / (1 + exp(-g)) and 1 - s = 1 / (1 + exp(g)): no cancellation in 1 - s.
#include "kernels/cuda/swiglu.hpp"

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/element_group.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

// Where group `group` of the [rows, F] grid starts: in out/dout (row * F + column) and in the
// gate half of gate_up/dgate_up (row * 2F + column; the up half is F further).
struct GroupOffsets {
  std::int64_t half, fused;
};
template <int kWidth>
__device__ __forceinline__ GroupOffsets offsets_of(std::int64_t group, std::int64_t hidden) {
  const std::int64_t groups_per_row = hidden / kWidth;
  const std::int64_t row = group / groups_per_row;
  const std::int64_t column = (group - row * groups_per_row) * kWidth;
  return {row * hidden + column, row * 2 * hidden + column};
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads) swiglu_forward_kernel(T* out, const T* gate_up, std::int64_t groups,
                                                                  std::int64_t hidden) {
  using Group = ElementGroup<T, kPacked>;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; group < groups;
       group += stride) {
    const GroupOffsets at = offsets_of<Group::kWidth>(group, hidden);
    float gate[Group::kWidth], up[Group::kWidth];
    Group::load(gate_up + at.fused, gate);
    Group::load(gate_up + at.fused + hidden, up);
    for (int i = 0; i < Group::kWidth; ++i) gate[i] = gate[i] * sigmoid(gate[i]) * up[i];
    Group::store(out + at.half, gate);
  }
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads) swiglu_backward_kernel(T* dgate_up, const T* dout, const T* gate_up,
                                                                   std::int64_t groups, std::int64_t hidden) {
  using Group = ElementGroup<T, kPacked>;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t group = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; group < groups;
       group += stride) {
    const GroupOffsets at = offsets_of<Group::kWidth>(group, hidden);
    float gate[Group::kWidth], up[Group::kWidth], gradient[Group::kWidth];
    Group::load(gate_up + at.fused, gate);
    Group::load(gate_up + at.fused + hidden, up);
    Group::load(dout + at.half, gradient);
    for (int i = 0; i < Group::kWidth; ++i) {
      const float s = sigmoid(gate[i]), one_minus_s = sigmoid(-gate[i]);
      const float d_gate = gradient[i] * up[i] * s * (1.0f + gate[i] * one_minus_s);
      up[i] = gradient[i] * gate[i] * s;  // d up, in the register up no longer needs
      gate[i] = d_gate;
    }
    Group::store(dgate_up + at.fused, gate);
    Group::store(dgate_up + at.fused + hidden, up);
  }
}

void check_shape(const char* kernel, std::int64_t rows, std::int64_t hidden, bool pointers_present) {
  if (rows < 0 || hidden <= 0) cuda_launch::fail_kernel_argument(kernel, "rows must be >= 0 and hidden (F) >= 1");
  if (rows > 0 && !pointers_present) cuda_launch::fail_kernel_argument(kernel, "a tensor pointer is null");
}

template <class T>
void launch_swiglu_forward(T* out, const T* gate_up, std::int64_t rows, std::int64_t hidden, cudaStream_t stream) {
  check_shape("swiglu_forward_kernel", rows, hidden, out && gate_up);
  if (rows == 0) return;
  const bool packed = hidden % Pack<T>::kWidth == 0 && aligned_16(out) && aligned_16(gate_up);
  const std::int64_t groups = rows * hidden / (packed ? Pack<T>::kWidth : 1);
  auto* const kernel = packed ? &swiglu_forward_kernel<T, true> : &swiglu_forward_kernel<T, false>;
  KILN_LAUNCH_NAMED("swiglu_forward_kernel", kernel, dim3(grid_stride_blocks(groups, kThreads)), dim3(kThreads), 0,
                    stream, out, gate_up, groups, hidden);
}

template <class T>
void launch_swiglu_backward(T* dgate_up, const T* dout, const T* gate_up, std::int64_t rows, std::int64_t hidden,
                            cudaStream_t stream) {
  check_shape("swiglu_backward_kernel", rows, hidden, dgate_up && dout && gate_up);
  if (rows == 0) return;
  const bool packed =
      hidden % Pack<T>::kWidth == 0 && aligned_16(dgate_up) && aligned_16(dout) && aligned_16(gate_up);
  const std::int64_t groups = rows * hidden / (packed ? Pack<T>::kWidth : 1);
  auto* const kernel = packed ? &swiglu_backward_kernel<T, true> : &swiglu_backward_kernel<T, false>;
  KILN_LAUNCH_NAMED("swiglu_backward_kernel", kernel, dim3(grid_stride_blocks(groups, kThreads)), dim3(kThreads), 0,
                    stream, dgate_up, dout, gate_up, groups, hidden);
}

}  // namespace

void swiglu_forward(float* out, const float* gate_up, std::int64_t rows, std::int64_t hidden, cudaStream_t stream) {
  launch_swiglu_forward(out, gate_up, rows, hidden, stream);
}
void swiglu_forward(__nv_bfloat16* out, const __nv_bfloat16* gate_up, std::int64_t rows, std::int64_t hidden,
                    cudaStream_t stream) {
  launch_swiglu_forward(out, gate_up, rows, hidden, stream);
}
void swiglu_backward(float* dgate_up, const float* dout, const float* gate_up, std::int64_t rows,
                     std::int64_t hidden, cudaStream_t stream) {
  launch_swiglu_backward(dgate_up, dout, gate_up, rows, hidden, stream);
}
void swiglu_backward(__nv_bfloat16* dgate_up, const __nv_bfloat16* dout, const __nv_bfloat16* gate_up,
                     std::int64_t rows, std::int64_t hidden, cudaStream_t stream) {
  launch_swiglu_backward(dgate_up, dout, gate_up, rows, hidden, stream);
}

}  // namespace kiln::KILN_CUDA_NS
