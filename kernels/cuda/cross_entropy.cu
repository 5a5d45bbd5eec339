// Fused softmax cross-entropy: forward statistics, in-place backward, vocab-parallel pieces.
//   logits/dlogits [rows, vocab] f32 or bf16; targets [rows] i32; mask [rows] u8 or null
//   lse, losses, row_max, sum_exp, target_logit [rows] f32; loss_sum [2] f64
// One block of 8 warps per row (grid-stride over rows, so any row count fits one grid). The
// forward reads a row once: every thread keeps an online (max, sum of exp) pair over its
// columns, the pairs are merged by a butterfly across the warp and then warp by warp in index
// order. The backward reads each logit once and writes its gradient in place. Rows go in
// 16-byte packs when vocab is a multiple of the pack width and logits is 16-byte aligned (then
// every row start is), the valid columns after the last whole pack scalar; otherwise scalar.
// The fp32 logits of the whole batch are never materialised: bf16 logits are widened in
// registers. exp/log are the accurate expf/logf (not __expf): the sums feed the loss.
#include "kernels/cuda/cross_entropy.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace kiln::KILN_CUDA_NS {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr std::int64_t kMaxBlocks = 132 * 8;
constexpr float kNegativeInfinity = -INFINITY;

// Calls visit(column, value) for every valid column of `row` that this thread owns.
template <class T, bool kPacked, class Visit>
__device__ __forceinline__ void for_each_valid(const T* row, int valid, Visit visit) {
  int scalar_from = 0;
  if constexpr (kPacked) {
    constexpr int width = Pack<T>::kWidth;
    const int packs = valid / width;
    for (int p = static_cast<int>(threadIdx.x); p < packs; p += kThreads) {
      float values[width];
      Pack<T>::load(row + p * width, values);
      for (int i = 0; i < width; ++i) visit(p * width + i, values[i]);
    }
    scalar_from = packs * width;
  }
  for (int c = scalar_from + static_cast<int>(threadIdx.x); c < valid; c += kThreads) visit(c, to_fp32(row[c]));
}

// The running (max, sum of exp(x - max)) of a softmax.
struct MaxSum {
  float max = kNegativeInfinity;
  float sum = 0.0f;
};

__device__ __forceinline__ void add_logit(MaxSum& acc, float x) {
  if (x > acc.max) {
    acc.sum = acc.sum * expf(acc.max - x) + 1.0f;  // exp(-inf) = 0 for the first value
    acc.max = x;
  } else if (x != kNegativeInfinity) {
    acc.sum += expf(x - acc.max);  // a NaN logit lands here and poisons the sum, as on the CPU
  }
}

// Symmetric in its arguments bit for bit (max and + commute), so a butterfly leaves every lane
// with the same pair.
__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  const float max = fmaxf(a.max, b.max);
  if (max == kNegativeInfinity) return {max, a.sum + b.sum};
  return {max, a.sum * expf(a.max - max) + b.sum * expf(b.max - max)};
}

__device__ MaxSum block_merge(MaxSum acc) {
  __shared__ float maxima[kWarps], sums[kWarps];
  for (int offset = 16; offset > 0; offset >>= 1)
    acc = merge(acc, {__shfl_xor_sync(kFullWarp, acc.max, offset), __shfl_xor_sync(kFullWarp, acc.sum, offset)});
  if (threadIdx.x % 32 == 0) maxima[threadIdx.x / 32] = acc.max, sums[threadIdx.x / 32] = acc.sum;
  __syncthreads();
  MaxSum total{maxima[0], sums[0]};
  for (int w = 1; w < kWarps; ++w) total = merge(total, {maxima[w], sums[w]});
  __syncthreads();  // the next row reuses the slots
  return total;
}

__device__ float block_reduce(float value, bool is_max) {
  __shared__ float slots[kWarps];
  value = is_max ? warp_max(value) : warp_sum(value);
  if (threadIdx.x % 32 == 0) slots[threadIdx.x / 32] = value;
  __syncthreads();
  float total = slots[0];
  for (int w = 1; w < kWarps; ++w) total = is_max ? fmaxf(total, slots[w]) : total + slots[w];
  __syncthreads();
  return total;
}

// loss_sum = (sum, count) of one block's per-thread partials, warps in index order.
__device__ void store_loss_sum(double* loss_sum, double sum, double count) {
  __shared__ double sums[kWarps], counts[kWarps];
  sum = warp_sum(sum), count = warp_sum(count);
  if (threadIdx.x % 32 == 0) sums[threadIdx.x / 32] = sum, counts[threadIdx.x / 32] = count;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0, rows = 0.0;
    for (int w = 0; w < kWarps; ++w) total += sums[w], rows += counts[w];
    loss_sum[0] = total, loss_sum[1] = rows;
  }
}

__device__ __forceinline__ bool counts(const std::uint8_t* mask, std::int64_t row) { return !mask || mask[row] != 0; }

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_forward_kernel(float* losses, float* lse, const T* logits, const std::int32_t* targets,
                                 const std::uint8_t* mask, std::int64_t rows, int vocab, int valid) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    if (!counts(mask, r)) {  // uniform over the block: no barrier is skipped by some threads only
      if (threadIdx.x == 0) losses[r] = 0.0f, lse[r] = 0.0f;
      continue;
    }
    const T* row = logits + r * vocab;
    MaxSum acc;
    for_each_valid<T, kPacked>(row, valid, [&](int, float x) { add_logit(acc, x); });
    const MaxSum total = block_merge(acc);
    if (threadIdx.x == 0) {
      const float row_lse = total.max + logf(total.sum);
      lse[r] = row_lse;
      losses[r] = row_lse - to_fp32(row[targets[r]]);
    }
  }
}

// One block: the counted losses, summed in f64 in a fixed order.
__global__ void __launch_bounds__(kThreads)
    loss_sum_kernel(double* loss_sum, const float* losses, const std::uint8_t* mask, std::int64_t rows) {
  double sum = 0.0, count = 0.0;
  for (std::int64_t r = threadIdx.x; r < rows; r += kThreads)
    if (counts(mask, r)) sum += losses[r], count += 1.0;
  store_loss_sum(loss_sum, sum, count);
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_backward_kernel(T* dlogits, const T* logits, const std::int32_t* targets, const float* lse,
                                  const std::uint8_t* mask, std::int64_t rows, int vocab, int valid,
                                  std::int64_t first_id, float scale) {
  constexpr int width = kPacked ? Pack<T>::kWidth : 1;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const bool counted = counts(mask, r);
    const float row_lse = counted ? lse[r] : 0.0f;
    const std::int64_t target = counted ? targets[r] - first_id : -1;
    const T* in = logits + r * vocab;
    T* out = dlogits + r * vocab;
    for (int c = static_cast<int>(threadIdx.x) * width; c < vocab; c += kThreads * width) {
      float values[width];
      if constexpr (kPacked) Pack<T>::load(in + c, values);
      else values[0] = to_fp32(in[c]);
      for (int i = 0; i < width; ++i) {
        const int column = c + i;
        float gradient = counted && column < valid ? expf(values[i] - row_lse) * scale : 0.0f;
        if (column == target && column < valid) gradient -= scale;
        values[i] = gradient;
      }
      if constexpr (kPacked) Pack<T>::store(out + c, values);
      else out[c] = from_fp32<T>(values[0]);
    }
  }
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads)
    local_max_kernel(float* row_max, const T* logits, std::int64_t rows, int vocab, int valid) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float best = kNegativeInfinity;
    for_each_valid<T, kPacked>(logits + r * vocab, valid, [&](int, float x) { best = fmaxf(best, x); });
    best = block_reduce(best, true);
    if (threadIdx.x == 0) row_max[r] = best;
  }
}

template <class T, bool kPacked>
__global__ void __launch_bounds__(kThreads)
    local_sums_kernel(float* sum_exp, float* target_logit, const T* logits, const std::int32_t* targets,
                      const float* row_max, std::int64_t rows, int vocab, int valid, std::int64_t first_id) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = logits + r * vocab;
    const float shift = row_max[r];
    float sum = 0.0f;
    for_each_valid<T, kPacked>(row, valid, [&](int, float x) { sum += expf(x - shift); });
    sum = block_reduce(sum, false);
    if (threadIdx.x == 0) {
      const std::int64_t target = targets[r] - first_id;
      sum_exp[r] = sum;
      target_logit[r] = target >= 0 && target < valid ? to_fp32(row[target]) : 0.0f;
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    cross_entropy_finish_kernel(float* losses, float* lse, double* loss_sum, const float* row_max,
                                const float* sum_exp, const float* target_logit, const std::uint8_t* mask,
                                std::int64_t rows) {
  double sum = 0.0, count = 0.0;
  for (std::int64_t r = threadIdx.x; r < rows; r += kThreads) {
    const bool counted = counts(mask, r);
    const float row_lse = counted ? row_max[r] + logf(sum_exp[r]) : 0.0f;
    const float loss = counted ? row_lse - target_logit[r] : 0.0f;
    lse[r] = row_lse;
    if (losses) losses[r] = loss;
    if (counted) sum += loss, count += 1.0;
  }
  store_loss_sum(loss_sum, sum, count);
}

void check_logits(const char* kernel, const void* logits, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                  bool valid_may_be_zero) {
  if (rows < 0 || vocab <= 0 || vocab > (std::int64_t{1} << 30))
    cuda_launch::fail_kernel_argument(kernel, "rows must be >= 0 and vocab in 1..2^30");
  if (valid > vocab || valid < (valid_may_be_zero ? 0 : 1))
    cuda_launch::fail_kernel_argument(kernel, valid_may_be_zero ? "valid must be in [0, vocab]"
                                                                : "valid_vocab must be in [1, vocab]");
  if (rows > 0 && !logits) cuda_launch::fail_kernel_argument(kernel, "logits must not be null");
}

template <class T>
bool rows_packed(const T* a, const T* b, std::int64_t vocab) {
  return vocab % Pack<T>::kWidth == 0 && aligned_16(a) && aligned_16(b);
}

unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>(std::min(kMaxBlocks, rows)); }

template <class T>
void launch_forward(float* losses, float* lse, double* loss_sum, const T* logits, const std::int32_t* targets,
                    const std::uint8_t* mask, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                    cudaStream_t stream) {
  constexpr const char* kernel = "cross_entropy_forward_kernel";
  check_logits(kernel, logits, rows, vocab, valid, false);
  if (!losses || !lse || !loss_sum || (rows > 0 && !targets))
    cuda_launch::fail_kernel_argument(kernel, "losses, lse, loss_sum and targets must not be null");
  if (rows > 0) {
    auto* const launch = rows_packed(logits, logits, vocab) ? &cross_entropy_forward_kernel<T, true>
                                                            : &cross_entropy_forward_kernel<T, false>;
    KILN_LAUNCH_NAMED(kernel, launch, dim3(row_blocks(rows)), dim3(kThreads), 0, stream, losses, lse, logits, targets,
                      mask, rows, static_cast<int>(vocab), static_cast<int>(valid));
  }
  KILN_LAUNCH(loss_sum_kernel, dim3(1), dim3(kThreads), 0, stream, loss_sum, losses, mask, rows);
}

template <class T>
void launch_backward(T* dlogits, const T* logits, const std::int32_t* targets, const float* lse,
                     const std::uint8_t* mask, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                     std::int64_t first_id, float grad_scale, cudaStream_t stream) {
  constexpr const char* kernel = "cross_entropy_backward_kernel";
  check_logits(kernel, logits, rows, vocab, valid, false);
  if (rows == 0) return;
  if (!dlogits || !targets || !lse) cuda_launch::fail_kernel_argument(kernel, "dlogits, targets and lse must not be null");
  auto* const launch = rows_packed(dlogits, logits, vocab) ? &cross_entropy_backward_kernel<T, true>
                                                           : &cross_entropy_backward_kernel<T, false>;
  KILN_LAUNCH_NAMED(kernel, launch, dim3(row_blocks(rows)), dim3(kThreads), 0, stream, dlogits, logits, targets, lse,
                    mask, rows, static_cast<int>(vocab), static_cast<int>(valid), first_id, grad_scale);
}

template <class T>
void launch_local_max(float* row_max, const T* logits, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                      cudaStream_t stream) {
  constexpr const char* kernel = "local_max_kernel";
  check_logits(kernel, logits, rows, vocab, valid, true);
  if (rows == 0) return;
  if (!row_max) cuda_launch::fail_kernel_argument(kernel, "row_max must not be null");
  auto* const launch = rows_packed(logits, logits, vocab) ? &local_max_kernel<T, true> : &local_max_kernel<T, false>;
  KILN_LAUNCH_NAMED(kernel, launch, dim3(row_blocks(rows)), dim3(kThreads), 0, stream, row_max, logits, rows,
                    static_cast<int>(vocab), static_cast<int>(valid));
}

template <class T>
void launch_local_sums(float* sum_exp, float* target_logit, const T* logits, const std::int32_t* targets,
                       const float* row_max, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                       std::int64_t first_id, cudaStream_t stream) {
  constexpr const char* kernel = "local_sums_kernel";
  check_logits(kernel, logits, rows, vocab, valid, true);
  if (rows == 0) return;
  if (!sum_exp || !target_logit || !targets || !row_max)
    cuda_launch::fail_kernel_argument(kernel, "sum_exp, target_logit, targets and row_max must not be null");
  auto* const launch = rows_packed(logits, logits, vocab) ? &local_sums_kernel<T, true> : &local_sums_kernel<T, false>;
  KILN_LAUNCH_NAMED(kernel, launch, dim3(row_blocks(rows)), dim3(kThreads), 0, stream, sum_exp, target_logit, logits,
                    targets, row_max, rows, static_cast<int>(vocab), static_cast<int>(valid), first_id);
}

}  // namespace

void cross_entropy_forward(float* losses, float* lse, double* loss_sum, const float* logits,
                           const std::int32_t* targets, const std::uint8_t* mask, std::int64_t rows,
                           std::int64_t vocab, std::int64_t valid, cudaStream_t stream) {
  launch_forward(losses, lse, loss_sum, logits, targets, mask, rows, vocab, valid, stream);
}
void cross_entropy_forward(float* losses, float* lse, double* loss_sum, const __nv_bfloat16* logits,
                           const std::int32_t* targets, const std::uint8_t* mask, std::int64_t rows,
                           std::int64_t vocab, std::int64_t valid, cudaStream_t stream) {
  launch_forward(losses, lse, loss_sum, logits, targets, mask, rows, vocab, valid, stream);
}

void cross_entropy_backward(float* dlogits, const float* logits, const std::int32_t* targets, const float* lse,
                            const std::uint8_t* mask, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                            std::int64_t first_id, float grad_scale, cudaStream_t stream) {
  launch_backward(dlogits, logits, targets, lse, mask, rows, vocab, valid, first_id, grad_scale, stream);
}
void cross_entropy_backward(__nv_bfloat16* dlogits, const __nv_bfloat16* logits, const std::int32_t* targets,
                            const float* lse, const std::uint8_t* mask, std::int64_t rows, std::int64_t vocab,
                            std::int64_t valid, std::int64_t first_id, float grad_scale, cudaStream_t stream) {
  launch_backward(dlogits, logits, targets, lse, mask, rows, vocab, valid, first_id, grad_scale, stream);
}

void cross_entropy_local_max(float* row_max, const float* logits, std::int64_t rows, std::int64_t vocab,
                             std::int64_t valid, cudaStream_t stream) {
  launch_local_max(row_max, logits, rows, vocab, valid, stream);
}
void cross_entropy_local_max(float* row_max, const __nv_bfloat16* logits, std::int64_t rows, std::int64_t vocab,
                             std::int64_t valid, cudaStream_t stream) {
  launch_local_max(row_max, logits, rows, vocab, valid, stream);
}

void cross_entropy_local_sums(float* sum_exp, float* target_logit, const float* logits, const std::int32_t* targets,
                              const float* row_max, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                              std::int64_t first_id, cudaStream_t stream) {
  launch_local_sums(sum_exp, target_logit, logits, targets, row_max, rows, vocab, valid, first_id, stream);
}
void cross_entropy_local_sums(float* sum_exp, float* target_logit, const __nv_bfloat16* logits,
                              const std::int32_t* targets, const float* row_max, std::int64_t rows,
                              std::int64_t vocab, std::int64_t valid, std::int64_t first_id, cudaStream_t stream) {
  launch_local_sums(sum_exp, target_logit, logits, targets, row_max, rows, vocab, valid, first_id, stream);
}

void cross_entropy_finish(float* losses, float* lse, double* loss_sum, const float* row_max, const float* sum_exp,
                          const float* target_logit, const std::uint8_t* mask, std::int64_t rows,
                          cudaStream_t stream) {
  constexpr const char* kernel = "cross_entropy_finish_kernel";
  if (rows < 0) cuda_launch::fail_kernel_argument(kernel, "rows must be >= 0");
  if (!lse || !loss_sum || (rows > 0 && (!row_max || !sum_exp || !target_logit)))
    cuda_launch::fail_kernel_argument(kernel, "lse, loss_sum, row_max, sum_exp and target_logit must not be null");
  KILN_LAUNCH(cross_entropy_finish_kernel, dim3(1), dim3(kThreads), 0, stream, losses, lse, loss_sum, row_max, sum_exp,
              target_logit, mask, rows);
}

}  // namespace kiln::KILN_CUDA_NS
