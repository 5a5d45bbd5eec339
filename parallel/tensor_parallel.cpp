#include "parallel/tensor_parallel.hpp"

#include <algorithm>

namespace kiln::parallel {

namespace {

// The model passes its tp communicator only when tp > 1.
bool splits(const Communicator* tp) { return tp != nullptr; }

}  // namespace

VocabShard VocabShard::of(std::int64_t vocab_size, std::int64_t padded_vocab, int tp_rank,
                          int tp_size) {
  const std::int64_t rows = padded_vocab / tp_size;
  VocabShard shard;
  shard.first = tp_rank * rows;
  shard.valid = std::clamp<std::int64_t>(vocab_size - shard.first, 0, rows);
  shard.vocab_size = vocab_size;
  return shard;
}

// ---- ColumnParallelLinear ------------------------------------------------------------------

void ColumnParallelLinear::forward(Tensor y, Tensor x, Tensor w, Tensor b) const {
  ops::linear_forward(y, x, w, b);
}

void ColumnParallelLinear::backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x,
                                    Tensor w) const {
  ops::linear_backward(dx, dw, db, dy, x, w);
  if (splits(tp_)) tp_->all_reduce(dx, ReduceOp::Sum);
}

// ---- RowParallelLinear ---------------------------------------------------------------------

void RowParallelLinear::forward(Tensor y, Tensor x, Tensor w, Tensor b, Tensor zero_ids) const {
  if (!splits(tp_)) {
    ops::linear_forward(y, x, w, b);
    return;
  }
  // The bias is replicated: added after the sum, or it would count tp times.
  ops::linear_forward(y, x, w);
  tp_->all_reduce(y, ReduceOp::Sum);
  if (b.defined())
    ops::embedding_forward(y, zero_ids, b.reshape({1, b.numel()}), ops::Accumulate::Yes);
}

void RowParallelLinear::backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x,
                                 Tensor w) const {
  ops::linear_backward(dx, dw, db, dy, x, w);
}

// ---- VocabParallelEmbedding ----------------------------------------------------------------

void VocabParallelEmbedding::forward(Tensor out, Tensor ids, Tensor table) const {
  if (!splits(tp_)) {
    ops::embedding_forward(out, ids, table);
    return;
  }
  ops::embedding_forward_vocab_parallel(out, ids, table, shard_.first);
  tp_->all_reduce(out, ReduceOp::Sum);
}

void VocabParallelEmbedding::backward(Tensor dtable, Tensor dout, Tensor ids) const {
  if (splits(tp_))
    ops::embedding_backward_vocab_parallel(dtable, dout, ids, shard_.first);
  else
    ops::embedding_backward(dtable, dout, ids);
}

// ---- VocabParallelCrossEntropy -------------------------------------------------------------

void VocabParallelCrossEntropy::forward(Tensor losses, Tensor lse, Tensor loss_sum, Tensor logits,
                                        Tensor targets, Tensor mask,
                                        const Scratch& scratch) const {
  if (!splits(tp_)) {
    ops::cross_entropy_forward(losses, lse, loss_sum, logits, targets, mask, shard_.vocab_size);
    return;
  }
  const Tensor sum_exp = scratch.exp_and_target.select(0);
  const Tensor target_logit = scratch.exp_and_target.select(1);
  ops::cross_entropy_local_max(scratch.row_max, logits, shard_.valid);
  tp_->all_reduce(scratch.row_max, ReduceOp::Max);
  ops::cross_entropy_local_sums(sum_exp, target_logit, logits, targets, scratch.row_max,
                                shard_.valid, shard_.first);
  tp_->all_reduce(scratch.exp_and_target, ReduceOp::Sum);
  ops::cross_entropy_finish(losses, lse, loss_sum, scratch.row_max, sum_exp, target_logit, mask);
}

void VocabParallelCrossEntropy::backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse,
                                         Tensor mask, double grad_scale) const {
  if (!splits(tp_))
    ops::cross_entropy_backward(dlogits, logits, targets, lse, mask, shard_.vocab_size,
                                grad_scale);
  else if (shard_.valid > 0)
    ops::cross_entropy_backward_vocab_parallel(dlogits, logits, targets, lse, mask, shard_.valid,
                                               shard_.first, grad_scale);
  else
    ops::zero(dlogits);  // a shard of padding rows only: no gradient flows through it
}

}  // namespace kiln::parallel
