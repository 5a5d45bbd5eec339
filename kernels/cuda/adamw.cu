// Multi-tensor AdamW and the two-pass deterministic sum of squares (see adamw.hpp).
//   master, grads, m, v f32; working bf16 or f32 (optional); segments/ranges in device memory
// AdamW: every block walks the whole segment table in order and takes a grid-stride share of
// each segment, so one launch covers any number of segments of any sizes. Segments whose
// offsets are multiples of 4 (with 16-byte aligned bases) go in 16-byte packs of 4 f32
// (the working copy as 8-byte bf16 quads or 16-byte f32 packs); the rest of a segment, and
// segments with odd offsets, go scalar. Each element is independent: the result does not
// depend on the grid, and the f32 arithmetic is that of kernels/cpu/adamw.cpp.
#include "kernels/cuda/adamw.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kAdamWBlocks = 132 * 4;

// The f32 constants of cpu::adamw_step, from the f64 hyper-parameters.
struct AdamWConstants {
  float decay, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, eps, inv_sqrt_bias2, grad_scale;
};

AdamWConstants adamw_constants(const AdamWHyper& h) {
  const auto t = static_cast<double>(h.step);
  const double step_size = h.lr / (1.0 - std::pow(h.beta1, t));
  const double sqrt_bias2 = std::sqrt(1.0 - std::pow(h.beta2, t));
  return {static_cast<float>(1.0 - h.lr * h.weight_decay), static_cast<float>(h.beta1), static_cast<float>(h.beta2),
          static_cast<float>(1.0 - h.beta1),               static_cast<float>(1.0 - h.beta2),
          static_cast<float>(step_size),                   static_cast<float>(h.eps),
          static_cast<float>(1.0 / sqrt_bias2),            static_cast<float>(h.grad_scale)};
}

// One element of AdamW: updates m, v in place and returns the new parameter.
__device__ __forceinline__ float adamw_element(float p, float g, float& m, float& v, float decay,
                                               const AdamWConstants& s) {
  const float grad = g * s.grad_scale;
  m = s.beta1 * m + s.one_minus_beta1 * grad;
  v = s.beta2 * v + s.one_minus_beta2 * grad * grad;
  return p * decay - s.step_size * m / (sqrtf(v) * s.inv_sqrt_bias2 + s.eps);
}

__device__ __forceinline__ void store_quad(float* working, const float* values) { Pack<float>::store(working, values); }
__device__ __forceinline__ void store_quad(__nv_bfloat16* working, const float* values) {
  const __nv_bfloat162 pairs[2] = {__floats2bfloat162_rn(values[0], values[1]),
                                   __floats2bfloat162_rn(values[2], values[3])};
  uint2 word;
  std::memcpy(&word, pairs, sizeof(word));
  store_word(working, word);
}

template <class W>
__device__ void adamw_segment(float* master, W* working, const float* grads, float* m, float* v,
                              const AdamWDeviceSegment& segment, bool bases_aligned, const AdamWConstants& s) {
  const float decay = segment.weight_decay ? s.decay : 1.0f;
  float* p = master + segment.param_offset;
  W* w = working ? working + segment.param_offset : nullptr;
  const float* g = grads + segment.state_offset;
  float* ms = m + segment.state_offset;
  float* vs = v + segment.state_offset;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kThreads;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const bool packed = bases_aligned && segment.param_offset % 4 == 0 && segment.state_offset % 4 == 0;
  const std::int64_t quads = packed ? segment.length / 4 : 0;
  for (std::int64_t q = first; q < quads; q += stride) {
    float pv[4], gv[4], mv[4], vv[4];
    Pack<float>::load(p + 4 * q, pv);
    Pack<float>::load(g + 4 * q, gv);
    Pack<float>::load(ms + 4 * q, mv);
    Pack<float>::load(vs + 4 * q, vv);
    for (int i = 0; i < 4; ++i) pv[i] = adamw_element(pv[i], gv[i], mv[i], vv[i], decay, s);
    Pack<float>::store(p + 4 * q, pv);
    Pack<float>::store(ms + 4 * q, mv);
    Pack<float>::store(vs + 4 * q, vv);
    if (w) store_quad(w + 4 * q, pv);
  }
  for (std::int64_t i = 4 * quads + first; i < segment.length; i += stride) {
    float mi = ms[i], vi = vs[i];
    const float pi = adamw_element(p[i], g[i], mi, vi, decay, s);
    p[i] = pi, ms[i] = mi, vs[i] = vi;
    if (w) w[i] = from_fp32<W>(pi);
  }
}

template <class W>
__global__ void __launch_bounds__(kThreads)
    adamw_segments_kernel(float* master, W* working, const float* grads, float* m, float* v,
                          const AdamWDeviceSegment* segments, int count, bool bases_aligned, AdamWConstants s) {
  for (int k = 0; k < count; ++k) adamw_segment(master, working, grads, m, v, segments[k], bases_aligned, s);
}

// Pass 1: block b sums the squares of its grid-stride share of every range, in f64.
__global__ void __launch_bounds__(kThreads)
    sum_of_squares_partials_kernel(double* partials, const float* x, const DeviceFlatRange* ranges, int count,
                                   bool base_aligned) {
  __shared__ double warp_sums[kThreads / 32];
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kThreads;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  double sum = 0.0;
  for (int k = 0; k < count; ++k) {
    const float* range = x + ranges[k].offset;
    const std::int64_t quads = base_aligned && ranges[k].offset % 4 == 0 ? ranges[k].length / 4 : 0;
    for (std::int64_t q = first; q < quads; q += stride) {
      float values[4];
      Pack<float>::load(range + 4 * q, values);
      for (int i = 0; i < 4; ++i) sum += static_cast<double>(values[i]) * values[i];
    }
    for (std::int64_t i = 4 * quads + first; i < ranges[k].length; i += stride)
      sum += static_cast<double>(range[i]) * range[i];
  }
  sum = warp_sum(sum);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double block_sum = 0.0;
    for (int w = 0; w < kThreads / 32; ++w) block_sum += warp_sums[w];  // fixed order
    partials[blockIdx.x] = block_sum;
  }
}

// Pass 2: one warp adds the partials, lane l taking l, l + 32, ... in order, then the tree.
__global__ void __launch_bounds__(32)
    sum_of_squares_finish_kernel(double* total, std::int32_t* non_finite, const double* partials) {
  double sum = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < kSumOfSquaresPartials; i += 32) sum += partials[i];
  sum = warp_sum(sum);
  if (threadIdx.x == 0) {
    total[0] = sum;
    if (non_finite) non_finite[0] = isfinite(sum) ? 0 : 1;
  }
}

template <class W>
void launch_adamw(float* master, W* working, const float* grads, float* m, float* v,
                  const AdamWDeviceSegment* segments, int count, const AdamWHyper& hyper, cudaStream_t stream) {
  constexpr const char* kernel = "adamw_segments_kernel";
  if (count < 0) cuda_launch::fail_kernel_argument(kernel, "the segment count is negative");
  if (count == 0) return;
  if (!master || !grads || !m || !v || !segments)
    cuda_launch::fail_kernel_argument(kernel, "master, grads, m, v and segments must not be null");
  if (hyper.step < 1) cuda_launch::fail_kernel_argument(kernel, "step must be >= 1 (bias correction)");
  if (!(hyper.lr >= 0) || !(hyper.beta1 >= 0 && hyper.beta1 < 1) || !(hyper.beta2 >= 0 && hyper.beta2 < 1) ||
      !(hyper.eps > 0))
    cuda_launch::fail_kernel_argument(kernel, "needs lr >= 0, beta1 and beta2 in [0, 1) and eps > 0");
  const bool bases_aligned = aligned_16(master) && aligned_16(grads) && aligned_16(m) && aligned_16(v) &&
                             (working == nullptr || reinterpret_cast<std::uintptr_t>(working) % (4 * sizeof(W)) == 0);
  auto* const launch = &adamw_segments_kernel<W>;
  KILN_LAUNCH_NAMED(kernel, launch, dim3(kAdamWBlocks), dim3(kThreads), 0, stream, master, working, grads, m, v,
                    segments, count, bases_aligned, adamw_constants(hyper));
}

}  // namespace

void validate_adamw_segments(const AdamWDeviceSegment* host_segments, int count, std::int64_t param_size,
                             std::int64_t state_size) {
  constexpr const char* kernel = "adamw_segments_kernel";
  std::vector<std::pair<std::int64_t, std::int64_t>> params, states;
  for (int k = 0; k < count; ++k) {
    const AdamWDeviceSegment& s = host_segments[k];
    if (s.length < 0 || s.param_offset < 0 || s.state_offset < 0 || s.param_offset + s.length > param_size ||
        s.state_offset + s.length > state_size)
      cuda_launch::fail_kernel_argument(kernel, ("segment " + std::to_string(k) + " lies outside the buffers").c_str());
    params.emplace_back(s.param_offset, s.param_offset + s.length);
    states.emplace_back(s.state_offset, s.state_offset + s.length);
  }
  for (auto* ranges : {&params, &states}) {
    std::sort(ranges->begin(), ranges->end());
    for (std::size_t i = 1; i < ranges->size(); ++i)
      if ((*ranges)[i].first < (*ranges)[i - 1].second)
        cuda_launch::fail_kernel_argument(kernel, "two segments overlap");
  }
}

void adamw_step_segments(float* master, __nv_bfloat16* working, const float* grads, float* m, float* v,
                         const AdamWDeviceSegment* segments, int count, const AdamWHyper& hyper,
                         cudaStream_t stream) {
  launch_adamw(master, working, grads, m, v, segments, count, hyper, stream);
}
void adamw_step_segments(float* master, float* working, const float* grads, float* m, float* v,
                         const AdamWDeviceSegment* segments, int count, const AdamWHyper& hyper,
                         cudaStream_t stream) {
  launch_adamw(master, working, grads, m, v, segments, count, hyper, stream);
}

void sum_of_squares(double* total, std::int32_t* non_finite, const float* x, const DeviceFlatRange* ranges, int count,
                    double* partials, cudaStream_t stream) {
  if (count < 0) cuda_launch::fail_kernel_argument("sum_of_squares_partials_kernel", "the range count is negative");
  if (!total || !partials || (count > 0 && (!x || !ranges)))
    cuda_launch::fail_kernel_argument("sum_of_squares_partials_kernel",
                                      "total, partials, and x and ranges when there are ranges, must not be null");
  KILN_LAUNCH(sum_of_squares_partials_kernel, dim3(kSumOfSquaresPartials), dim3(kThreads), 0, stream, partials, x,
              ranges, count, aligned_16(x));
  KILN_LAUNCH(sum_of_squares_finish_kernel, dim3(1), dim3(32), 0, stream, total, non_finite, partials);
}

}  // namespace kiln::KILN_CUDA_NS
