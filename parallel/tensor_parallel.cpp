#include "parallel/tensor_parallel.hpp"

#include <algorithm>
#include <utility>

#include "trainer/core/error.hpp"

namespace kiln::parallel {

namespace {

// The model passes its tp communicator only when tp > 1.
bool splits(const Communicator* tp) { return tp != nullptr; }

// Which way a copy through a staging buffer goes.
enum class Direction { to_staging, from_staging };

// With one batch row, [B, T, C] already is rank-major.
bool needs_staging(const Tensor& full) { return full.size(0) > 1; }

// The shapes of a gather or scatter along the sequence: full [B, T, C] and chunk [B, T/tp, C].
void check_sequence_shapes(const char* op, const Communicator& tp, const Tensor& full,
                           const Tensor& chunk, const Tensor& staging) {
  const bool shapes = full.rank() == 3 && chunk.rank() == 3 && full.size(0) == chunk.size(0) &&
                      full.size(1) == chunk.size(1) * tp.size() && full.size(2) == chunk.size(2) &&
                      full.is_contiguous() && chunk.is_contiguous();
  const bool staged = shapes && (!needs_staging(full) || (staging.defined() && staging.is_contiguous() &&
                                                          staging.numel() == full.numel()));
  if (!staged)
    fail("{}: full {} must be [B, T, C] and chunk {} [B, T/{}, C], both contiguous, with a "
         "contiguous staging buffer of full's size when B > 1 (given {})",
         op, full.str(), chunk.str(), tp.size(), staging.str());
}

// Copies between the model's [B, T, C] and the collectives' rank-major [tp, B, T/tp, C]: the
// chunk of rank r in batch row b is one contiguous run of T/tp rows on both sides.
void restage(Tensor full, Tensor staging, int ranks, Direction direction) {
  const std::int64_t B = full.size(0), T = full.size(1), C = full.size(2), chunk = T / ranks;
  const Tensor by_rank = staging.reshape({ranks, B, chunk, C});
  for (int r = 0; r < ranks; ++r)
    for (std::int64_t b = 0; b < B; ++b) {
      const Tensor in_full = full.select(b).narrow(0, r * chunk, chunk);
      const Tensor in_staging = by_rank.select(r).select(b);
      if (direction == Direction::to_staging)
        ops::copy(in_staging, in_full);
      else
        ops::copy(in_full, in_staging);
    }
}

// x as a GEMM or a lookup over the whole sequence needs it: gathered from the ranks' chunks
// under SP, else as it is.
Tensor whole_sequence(Communicator* tp, bool sequence_parallel, Tensor x,
                      const SequenceScratch& scratch) {
  if (!sequence_parallel) return x;
  all_gather_sequence(*tp, scratch.full, x, scratch.staging);
  return scratch.full;
}

// SP splits over the tp group: without one (tp = 1) a layer is the serial op either way.
bool sequence_parallel_on(const Communicator* tp, SequenceParallel sequence) {
  return splits(tp) && sequence == SequenceParallel::on;
}

// The parts of `ranges` that lie in grads = elements [first, first + numel) of a flat buffer,
// as views of grads.
std::vector<Tensor> parts_inside(const std::vector<ops::FlatRange>& ranges, Tensor grads,
                                 std::int64_t first) {
  std::vector<Tensor> parts;
  for (const ops::FlatRange& range : ranges) {
    const std::int64_t begin = std::max(range.offset, first);
    const std::int64_t end = std::min(range.offset + range.length, first + grads.numel());
    if (begin < end) parts.push_back(grads.narrow(0, begin - first, end - begin));
  }
  return parts;
}

// `parts` one after the other in `packed`: copied in (to_staging) or back out.
void pack(const std::vector<Tensor>& parts, Tensor packed, Direction direction) {
  std::int64_t at = 0;
  for (const Tensor& part : parts) {
    const Tensor slot = packed.narrow(0, at, part.numel());
    if (direction == Direction::to_staging)
      ops::copy(slot, part);
    else
      ops::copy(part, slot);
    at += part.numel();
  }
}

// y += b on every row, once (after the sum over tp, or it would count tp times).
void add_bias(Tensor y, Tensor b, Tensor zero_ids) {
  if (b.defined())
    ops::embedding_forward(y, zero_ids, b.reshape({1, b.numel()}), ops::Accumulate::Yes);
}

}  // namespace

void all_gather_sequence(Communicator& tp, Tensor full, Tensor chunk, Tensor staging) {
  check_sequence_shapes("all_gather_sequence", tp, full, chunk, staging);
  if (!needs_staging(full)) return tp.all_gather(full.reshape({-1}), chunk.reshape({-1}));
  tp.all_gather(staging.reshape({-1}), chunk.reshape({-1}));
  restage(full, staging, tp.size(), Direction::from_staging);
}

void reduce_scatter_sequence(Communicator& tp, Tensor chunk, Tensor full, Tensor staging) {
  check_sequence_shapes("reduce_scatter_sequence", tp, full, chunk, staging);
  if (!needs_staging(full)) return tp.reduce_scatter(chunk.reshape({-1}), full.reshape({-1}));
  restage(full, staging, tp.size(), Direction::to_staging);
  tp.reduce_scatter(chunk.reshape({-1}), staging.reshape({-1}));
}

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

bool ColumnParallelLinear::sequence_parallel() const { return sequence_parallel_on(tp_, sequence_); }

void ColumnParallelLinear::forward(Tensor y, Tensor x, Tensor w, Tensor b,
                                   const SequenceScratch& scratch) const {
  ops::linear_forward(y, whole_sequence(tp_, sequence_parallel(), x, scratch), w, b);
}

void ColumnParallelLinear::backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                                    const SequenceScratch& scratch) const {
  if (!sequence_parallel()) {
    ops::linear_backward(dx, dw, db, dy, x, w);
    if (splits(tp_)) tp_->all_reduce(dx, ReduceOp::Sum);
    return;
  }
  // Only the chunk of x was kept: it is gathered again for dW. Then `full` takes dy W over all
  // T, this rank's features' share of dx, which one reduce-scatter sums and cuts to the chunk.
  ops::linear_backward({}, dw, db, dy, whole_sequence(tp_, true, x, scratch), w);
  ops::matmul(scratch.full.flatten_rows(), dy.flatten_rows(), w);
  reduce_scatter_sequence(*tp_, dx, scratch.full, scratch.staging);
}

// ---- RowParallelLinear ---------------------------------------------------------------------

bool RowParallelLinear::sequence_parallel() const { return sequence_parallel_on(tp_, sequence_); }

void RowParallelLinear::forward(Tensor y, Tensor x, Tensor w, Tensor b, Tensor zero_ids,
                                const SequenceScratch& scratch) const {
  if (!splits(tp_)) {
    ops::linear_forward(y, x, w, b);
    return;
  }
  if (sequence_parallel()) {
    ops::linear_forward(scratch.full, x, w);
    reduce_scatter_sequence(*tp_, y, scratch.full, scratch.staging);
  } else {
    ops::linear_forward(y, x, w);
    tp_->all_reduce(y, ReduceOp::Sum);
  }
  add_bias(y, b, zero_ids);
}

void RowParallelLinear::backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                                 const SequenceScratch& scratch) const {
  ops::linear_backward(dx, dw, db, whole_sequence(tp_, sequence_parallel(), dy, scratch), x, w);
}

// ---- VocabParallelEmbedding ----------------------------------------------------------------

bool VocabParallelEmbedding::sequence_parallel() const { return sequence_parallel_on(tp_, sequence_); }

void VocabParallelEmbedding::forward(Tensor out, Tensor ids, Tensor table,
                                     const SequenceScratch& scratch) const {
  if (!splits(tp_)) {
    ops::embedding_forward(out, ids, table);
    return;
  }
  if (!sequence_parallel()) {
    ops::embedding_forward_vocab_parallel(out, ids, table, shard_.first);
    tp_->all_reduce(out, ReduceOp::Sum);
    return;
  }
  ops::embedding_forward_vocab_parallel(scratch.full, ids, table, shard_.first);
  reduce_scatter_sequence(*tp_, out, scratch.full, scratch.staging);
}

void VocabParallelEmbedding::backward(Tensor dtable, Tensor dout, Tensor ids,
                                      const SequenceScratch& scratch) const {
  if (splits(tp_))
    ops::embedding_backward_vocab_parallel(
        dtable, whole_sequence(tp_, sequence_parallel(), dout, scratch), ids, shard_.first);
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

// ---- SequenceParallelGradients -------------------------------------------------------------

SequenceParallelGradients::SequenceParallelGradients(Communicator& tp,
                                                     std::vector<ops::FlatRange> ranges,
                                                     DType dtype, memory::Allocator& allocator)
    : tp_(&tp), ranges_(std::move(ranges)) {
  std::int64_t total = 0;
  for (const ops::FlatRange& range : ranges_) total += range.length;
  packed_ = memory::DeviceBuffer(static_cast<std::size_t>(total) * dtype_size(dtype),
                                 memory::MemoryCategory::communication, allocator);
}

void SequenceParallelGradients::complete(Tensor grads, std::int64_t first) {
  if (tp_ == nullptr) return;
  const std::vector<Tensor> parts = parts_inside(ranges_, grads, first);
  std::int64_t total = 0;
  for (const Tensor& part : parts) total += part.numel();
  if (total == 0) return;  // the same on every tp rank: their ranges and shards are alike
  const Tensor packed = packed_.view(grads.dtype, {total});
  pack(parts, packed, Direction::to_staging);
  tp_->all_reduce(packed, ReduceOp::Sum);
  pack(parts, packed, Direction::from_staging);
}

}  // namespace kiln::parallel
