#pragma once
// kiln::ops — AdamW and the gradient-norm reduction.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// One AdamW step, as torch.optim.AdamW (decoupled weight decay):
//   g = grad * grad_scale                     (grad_scale folds in clipping / averaging)
//   p -= lr * weight_decay * p                (only when apply_weight_decay)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
struct AdamWStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
  std::int64_t step = 1;  // t, 1-based, for bias correction
  double grad_scale = 1.0;
};
// param, grad, m, v: same shape and dtype (F32 or F64), contiguous. grad is not modified.
// Mixed precision: param is the f32 master (grad, m, v f32 too; the optimizer never takes
// bf16 state) and `working_copy`, when given, is the bf16 tensor of param's shape the model
// reads, refreshed with the rounded new weights in the same pass.
void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWStep& step,
                bool apply_weight_decay, Tensor working_copy = {});

// Multi-tensor AdamW: one call updates many parameters that live in flat buffers, so a step
// is one pass (one launch on a GPU) instead of one per parameter. Segment k updates
// params[param_offset, +length) from grads/m/v[state_offset, +length), with weight decay when
// `weight_decay` is set (matrices, not norms or biases). Each element gets exactly the
// arithmetic of adamw_step.
struct AdamWSegment {
  std::int64_t param_offset = 0;
  std::int64_t state_offset = 0;
  std::int64_t length = 0;
  bool weight_decay = false;
};
// params [P], grads/m/v [S] (same dtype, contiguous, 1-D); segments inside both and disjoint.
// working_copy: undefined, or a bf16 [P] (params then f32 masters): each segment's updated
// weights are also written, rounded to bf16, at the same offsets of working_copy, in the
// update pass itself (the bf16 working weights of mixed-precision training).
void adamw_step_segments(Tensor params, Tensor grads, Tensor m, Tensor v,
                         std::span<const AdamWSegment> segments, const AdamWStep& step,
                         Tensor working_copy = {});

// Elements [offset, offset + length) of a flat buffer.
struct FlatRange {
  std::int64_t offset = 0;
  std::int64_t length = 0;
};
// total [1] f64 = sum of x^2 over the ranges of x [N] (f32, f64 or bf16) (all of x when `ranges` is empty),
// accumulated in double, range by range in the given order (global grad-norm for clipping:
// every parameter counted once in one call, then sqrt after the all-reduce). The result stays
// in a tensor, so the step reads it back only once.
void sum_of_squares(Tensor total, Tensor x, std::span<const FlatRange> ranges = {});

}  // namespace kiln::ops
