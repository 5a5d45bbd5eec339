#pragma once
// kiln::ops — Fused softmax cross-entropy, plain and vocab-parallel, and sampling softmax.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// A loss summed over the rows that count, and how many rows counted, so callers can average
// over micro-batches and data-parallel ranks before dividing. The ops write it into a tensor,
// `loss_sum` [2] f64 = (sum, count), on the device of the logits, so a training step never
// waits for a scalar: callers add the micro-batches' loss sums with ops::add_to and read the
// total back once per optimizer step with read_loss_sum.
struct LossSum {
  double sum = 0.0;
  std::int64_t count = 0;
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
};
// The host value of a loss_sum tensor [2] f64 (the one explicit read-back).
LossSum read_loss_sum(Tensor loss_sum);

// logits [N, V] (columns >= valid_vocab are vocabulary padding: zero probability, zero
// gradient), targets [N] (index dtype, < valid_vocab on unmasked rows), mask [N] u8 or
// undefined (all rows count) ->
//   losses [N] (0 on masked rows; may be undefined), lse [N] (logsumexp over valid columns,
//   saved for backward), loss_sum [2] f64 = (sum over unmasked rows, their count).
void cross_entropy_forward(Tensor losses, Tensor lse, Tensor loss_sum, Tensor logits, Tensor targets,
                           Tensor mask, std::int64_t valid_vocab);
// dlogits [N, V] = (softmax(logits) - onehot(target)) * mask * grad_scale, padding columns 0.
// Usually grad_scale = 1 / (unmasked rows in the whole optimizer batch). dlogits may be
// logits (in place, as llm.c): probabilities are formed once, on the fly, from lse.
void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse, Tensor mask,
                            std::int64_t valid_vocab, double grad_scale);

// Vocab-parallel building blocks (§5): each tp rank holds columns
// [first_id, first_id + V_local) of the logits, of which `valid_local` are real vocabulary.
// 1. row_max [N] = max over local valid columns (-inf if none); caller all-reduces MAX.
void cross_entropy_local_max(Tensor row_max, Tensor logits, std::int64_t valid_local);
// 2. Given the global row_max: sum_exp [N] = sum exp(logit - row_max) over local valid
//    columns, target_logit [N] = logit of the target when this rank holds it, else 0.
//    Caller all-reduces SUM over both.
void cross_entropy_local_sums(Tensor sum_exp, Tensor target_logit, Tensor logits, Tensor targets,
                              Tensor row_max, std::int64_t valid_local, std::int64_t first_id);
// 3. From the reduced stats: lse [N] = row_max + log(sum_exp), losses [N] = lse - target_logit
//    (0 where masked; may be undefined), loss_sum [2] f64 = (masked sum, count).
void cross_entropy_finish(Tensor losses, Tensor lse, Tensor loss_sum, Tensor row_max, Tensor sum_exp,
                          Tensor target_logit, Tensor mask);
// 4. Backward on the local shard: as cross_entropy_backward, with the target compared
//    against first_id + column.
void cross_entropy_backward_vocab_parallel(Tensor dlogits, Tensor logits, Tensor targets,
                                           Tensor lse, Tensor mask, std::int64_t valid_local,
                                           std::int64_t first_id, double grad_scale);

// Softmax over the first valid_vocab columns at a temperature (sampling in `kiln generate`):
// logits [N, V] -> probs [N, V] (padding columns 0); probs may be logits.
void softmax_forward(Tensor probs, Tensor logits, std::int64_t valid_vocab,
                     double temperature = 1.0);

}  // namespace kiln::ops
