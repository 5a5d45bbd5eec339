#pragma once
// Fused softmax cross-entropy over rows of logits. Columns >= `valid` are vocabulary padding:
// they take no probability and get zero gradient. Masked rows (mask[i] == 0) are skipped:
// loss 0, lse 0, gradient 0, and their targets are never read.
//   forward:  logits [N, V], targets [N], mask [N] or null -> losses [N], lse [N]
//   backward: dlogits [N, V] = (exp(logit - lse) - onehot(target - first_id)) * scale
//             (dlogits may alias logits: each element is read once, then written)
// The vocab-parallel pieces work on a shard of columns [first_id, first_id + V).
#include <cstdint>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void cross_entropy_forward(T* losses, T* lse, RowView<const T> logits, const std::int64_t* targets,
                           const std::uint8_t* mask, std::int64_t valid);

template <class T>
void cross_entropy_backward(RowView<T> dlogits, RowView<const T> logits,
                            const std::int64_t* targets, const T* lse, const std::uint8_t* mask,
                            std::int64_t valid, std::int64_t first_id, double scale);

// row_max [N] = max over the first `valid` columns (-inf when valid == 0).
template <class T>
void row_max(T* out, RowView<const T> logits, std::int64_t valid);

// sum_exp [N] = sum exp(logit - row_max); target_logit [N] = logit of target when held.
template <class T>
void row_sum_exp_and_target(T* sum_exp, T* target_logit, RowView<const T> logits,
                            const std::int64_t* targets, const T* row_max, std::int64_t valid,
                            std::int64_t first_id);

// softmax of logits / temperature over the first `valid` columns; padding columns 0.
template <class T>
void softmax_rows(RowView<T> probs, RowView<const T> logits, std::int64_t valid,
                  double temperature);

}  // namespace kiln::cpu
