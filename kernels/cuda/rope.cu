// RoPE forward/backward on a strided [B, T, H, D] layout (see rope.hpp).
//   x, y [B, T, H, D] (unit inner stride) f32 or bf16, positions [B*T] i32, inv_freq [D/2] f64
// One block per token (grid-stride over tokens): its threads first tabulate cos and sin of the
// D/2 angles in shared memory (f64 angle, as the CPU op: p up to ~1e5 times f near 1 loses
// the phase in f32), then rotate every head of the token from that table, so the f64 math is
// paid once per token, not per head. Packed path: each thread rotates `width` pairs at once
// with 16-byte loads of x[i..], x[i + D/2..] and 16-byte shared reads of the table (contiguous
// per thread and across the warp: conflict-free); scalar path when D/2 is not a multiple of
// the pack width or a pointer or stride is not 16-byte aligned.
#include "kernels/cuda/rope.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kThreads = 128;
constexpr std::int64_t kMaxBlocks = 132 * 8;

__device__ void tabulate_angles(float* cos_table, float* sin_table, double position, const double* inv_freq, int half,
                                int direction) {
  for (int i = static_cast<int>(threadIdx.x); i < half; i += kThreads) {
    const double angle = position * inv_freq[i];
    cos_table[i] = static_cast<float>(::cos(angle));
    sin_table[i] = static_cast<float>(direction > 0 ? ::sin(angle) : -::sin(angle));
  }
}

template <class T, bool kPacked>
__device__ void rotate_token(T* y, const T* x, const float* cos_table, const float* sin_table, int heads,
                             std::int64_t head_stride, int half) {
  constexpr int width = kPacked ? Pack<T>::kWidth : 1;
  const int groups = half / width;  // pair groups per head
  for (int item = static_cast<int>(threadIdx.x); item < heads * groups; item += kThreads) {
    const int head = item / groups, i = (item % groups) * width;
    const T* xh = x + head * head_stride;
    T* yh = y + head * head_stride;
    float first[width], second[width], c[width], s[width];
    if constexpr (kPacked) {
      Pack<T>::load(xh + i, first);
      Pack<T>::load(xh + i + half, second);
      for (int k = 0; k < width; k += 4) {
        Pack<float>::load(cos_table + i + k, c + k);
        Pack<float>::load(sin_table + i + k, s + k);
      }
    } else {
      first[0] = to_fp32(xh[i]), second[0] = to_fp32(xh[i + half]);
      c[0] = cos_table[i], s[0] = sin_table[i];
    }
    float out_first[width], out_second[width];
    for (int k = 0; k < width; ++k) {
      out_first[k] = first[k] * c[k] - second[k] * s[k];
      out_second[k] = second[k] * c[k] + first[k] * s[k];
    }
    if constexpr (kPacked) {
      Pack<T>::store(yh + i, out_first);
      Pack<T>::store(yh + i + half, out_second);
    } else {
      yh[i] = from_fp32<T>(out_first[0]), yh[i + half] = from_fp32<T>(out_second[0]);
    }
  }
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads) rope_kernel(T* y, const T* x, RopeLayout layout,
                                                        const std::int32_t* positions, const double* inv_freq,
                                                        int direction) {
  KILN_DYNAMIC_SHARED(float, table);  // cos [D/2], then sin [D/2]
  const int half = static_cast<int>(layout.head_dim / 2);
  const std::int64_t tokens = layout.batch * layout.seq;
  for (std::int64_t token = blockIdx.x; token < tokens; token += gridDim.x) {
    const std::int64_t b = token / layout.seq, t = token % layout.seq;
    tabulate_angles(table, table + half, static_cast<double>(positions[token]), inv_freq, half, direction);
    __syncthreads();
    const std::int64_t offset = b * layout.batch_stride + t * layout.seq_stride;
    rotate_token<T, kPacked>(y + offset, x + offset, table, table + half, static_cast<int>(layout.heads),
                             layout.head_stride, half);
    __syncthreads();  // the next token rewrites the table
  }
}

void check_layout(const char* kernel, const RopeLayout& l) {
  if (l.batch < 0 || l.seq < 0 || l.heads < 0)
    cuda_launch::fail_kernel_argument(kernel, "batch, seq and heads must be >= 0");
  if (l.head_dim <= 0 || l.head_dim % 2 != 0 || l.head_dim > 8192)
    cuda_launch::fail_kernel_argument(kernel, "head_dim must be positive, even and at most 8192");
  if (l.heads * l.head_dim > (std::int64_t{1} << 30))
    cuda_launch::fail_kernel_argument(kernel, "heads * head_dim must be at most 2^30");
  if (l.head_stride < l.head_dim || l.seq_stride < l.heads * l.head_stride || l.batch_stride < l.seq * l.seq_stride)
    cuda_launch::fail_kernel_argument(kernel, "strides must not make heads or tokens overlap");
}

template <class T>
bool packs_fit(const T* y, const T* x, const RopeLayout& l) {
  const std::int64_t w = Pack<T>::kWidth;
  return (l.head_dim / 2) % w == 0 && aligned_16(y) && aligned_16(x) && l.head_stride % w == 0 &&
         l.seq_stride % w == 0 && l.batch_stride % w == 0;
}

template <class T>
void launch_rope(const char* kernel, T* y, const T* x, const RopeLayout& layout, const std::int32_t* positions,
                 const double* inv_freq, int direction, cudaStream_t stream) {
  check_layout(kernel, layout);
  const std::int64_t tokens = layout.batch * layout.seq;
  if (tokens == 0 || layout.heads == 0) return;
  if (!y || !x || !positions || !inv_freq)
    cuda_launch::fail_kernel_argument(kernel, "y, x, positions and inv_freq must not be null");
  const auto blocks = static_cast<unsigned>(std::min(kMaxBlocks, tokens));
  const std::size_t shared_bytes = static_cast<std::size_t>(layout.head_dim) * sizeof(float);
  auto* const launch = packs_fit(y, x, layout) ? &rope_kernel<T, true> : &rope_kernel<T, false>;
  KILN_LAUNCH_NAMED(kernel, launch, dim3(blocks), dim3(kThreads), shared_bytes, stream, y, x, layout, positions,
                    inv_freq, direction);
}

}  // namespace

void rope_forward(float* y, const float* x, const RopeLayout& layout, const std::int32_t* positions,
                  const double* inv_freq, cudaStream_t stream) {
  launch_rope("rope_forward_kernel", y, x, layout, positions, inv_freq, +1, stream);
}
void rope_forward(__nv_bfloat16* y, const __nv_bfloat16* x, const RopeLayout& layout, const std::int32_t* positions,
                  const double* inv_freq, cudaStream_t stream) {
  launch_rope("rope_forward_kernel", y, x, layout, positions, inv_freq, +1, stream);
}
void rope_backward(float* dx, const float* dy, const RopeLayout& layout, const std::int32_t* positions,
                   const double* inv_freq, cudaStream_t stream) {
  launch_rope("rope_backward_kernel", dx, dy, layout, positions, inv_freq, -1, stream);
}
void rope_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const RopeLayout& layout,
                   const std::int32_t* positions, const double* inv_freq, cudaStream_t stream) {
  launch_rope("rope_backward_kernel", dx, dy, layout, positions, inv_freq, -1, stream);
}

}  // namespace kiln::KILN_CUDA_NS
