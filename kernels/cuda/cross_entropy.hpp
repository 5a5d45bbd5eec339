#pragma once
// Fused softmax cross-entropy on the device, plain and vocab-parallel, with the semantics of
// kiln::ops::cross_entropy_* (kernels/ops/cross_entropy.hpp):
//   logits [rows, vocab] f32 or bf16, contiguous; columns >= valid are vocabulary padding (no
//   probability, zero gradient); targets [rows] i32; mask [rows] u8 (non-zero = counts) or
//   null (every row counts). Masked rows: loss 0, lse 0, gradient 0, target never read.
//   Statistics (row_max, sum_exp, target_logit, lse, losses) are f32; loss_sum [2] f64 =
//   (sum of the counted losses, their count), reduced in one block in a fixed order.
// Targets of counted rows are not range-checked on the device (a kernel cannot raise): the
// serial op needs them in [0, valid), as ops::cross_entropy_forward checks on the host.
// Every row reduction is per-thread sequential, then a butterfly across the warp, then the
// warps in index order: the bits do not depend on the schedule.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

// lse [rows] = logsumexp over the valid columns; losses [rows] = lse - logit[target] (a
// device buffer: the loss sum is reduced from it).
void cross_entropy_forward(float* losses, float* lse, double* loss_sum, const float* logits,
                           const std::int32_t* targets, const std::uint8_t* mask, std::int64_t rows,
                           std::int64_t vocab, std::int64_t valid, cudaStream_t stream);
void cross_entropy_forward(float* losses, float* lse, double* loss_sum, const __nv_bfloat16* logits,
                           const std::int32_t* targets, const std::uint8_t* mask, std::int64_t rows,
                           std::int64_t vocab, std::int64_t valid, cudaStream_t stream);

// dlogits [rows, vocab] = (exp(logit - lse) - onehot(target - first_id)) * grad_scale on the
// valid columns, 0 on padding and masked rows. dlogits may be logits (in place). first_id 0
// for the plain op; a vocab-parallel shard passes its first column's vocabulary id.
void cross_entropy_backward(float* dlogits, const float* logits, const std::int32_t* targets, const float* lse,
                            const std::uint8_t* mask, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                            std::int64_t first_id, float grad_scale, cudaStream_t stream);
void cross_entropy_backward(__nv_bfloat16* dlogits, const __nv_bfloat16* logits, const std::int32_t* targets,
                            const float* lse, const std::uint8_t* mask, std::int64_t rows, std::int64_t vocab,
                            std::int64_t valid, std::int64_t first_id, float grad_scale, cudaStream_t stream);

// Vocab-parallel statistics (ops::cross_entropy_local_max / _local_sums / _finish):
// 1. row_max [rows] = max over the shard's valid columns (-inf when valid == 0; NaN is skipped,
//    as the CPU op does; the sums below propagate it).
void cross_entropy_local_max(float* row_max, const float* logits, std::int64_t rows, std::int64_t vocab,
                             std::int64_t valid, cudaStream_t stream);
void cross_entropy_local_max(float* row_max, const __nv_bfloat16* logits, std::int64_t rows, std::int64_t vocab,
                             std::int64_t valid, cudaStream_t stream);
// 2. With the all-reduced row_max: sum_exp [rows] = sum exp(logit - row_max) over the valid
//    columns, target_logit [rows] = logit of the target when the shard holds it, else 0.
void cross_entropy_local_sums(float* sum_exp, float* target_logit, const float* logits, const std::int32_t* targets,
                              const float* row_max, std::int64_t rows, std::int64_t vocab, std::int64_t valid,
                              std::int64_t first_id, cudaStream_t stream);
void cross_entropy_local_sums(float* sum_exp, float* target_logit, const __nv_bfloat16* logits,
                              const std::int32_t* targets, const float* row_max, std::int64_t rows,
                              std::int64_t vocab, std::int64_t valid, std::int64_t first_id, cudaStream_t stream);
// 3. From the reduced statistics: lse = row_max + log(sum_exp), losses = lse - target_logit
//    (0 where masked; losses may be null), loss_sum as above.
void cross_entropy_finish(float* losses, float* lse, double* loss_sum, const float* row_max, const float* sum_exp,
                          const float* target_logit, const std::uint8_t* mask, std::int64_t rows,
                          cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
