#pragma once
// Tensor-parallel layers (Megatron style, DESIGN.md §2 and §6), built on kiln::ops and the tp
// Communicator. Each name says what is split and so where the all-reduce sits:
//
//   ColumnParallelLinear     W [out, in] split by output rows: each rank computes its own
//                            output features, no communication in forward; the input
//                            gradient is partial and is all-reduced (sum) in backward.
//   RowParallelLinear        W split by input columns: x is this rank's slice of the
//                            features, the partial outputs are all-reduced (sum) in forward
//                            and the replicated bias added once; backward is local (the
//                            output gradient is replicated).
//   VocabParallelEmbedding   table split by vocabulary rows: each rank looks up its rows
//                            (zeros for the other ids) and the result is all-reduced (sum).
//   VocabParallelCrossEntropy  logits split by vocabulary columns: the row statistics are
//                            combined over tp (all-reduce MAX of the row max, then SUM of the
//                            exp sums and the target logits), so every rank ends with the
//                            same lse and loss without gathering the logits.
//
// Sequence parallelism (SequenceParallel::on; Megatron-LM's sequence_parallel, Korthikanti et
// al. 2022). Outside the column -> row regions everything is replicated over tp: the residual
// stream, the norms and what they save for backward. With SP each rank keeps only its
// contiguous chunk of the sequence there, [B, T/tp, C] (rank r: positions [r T/tp, (r+1) T/tp)),
// and every all-reduce becomes an all-gather and a reduce-scatter (together the same volume),
// plus one all-gather more per column-parallel backward, of its input, which only the chunk
// of is kept (as in Megatron):
//   ColumnParallelLinear     x is the chunk; it is all-gathered along the sequence before the
//                            GEMM (y covers all T). Backward gathers x again for dW (only the
//                            chunk is kept) and reduce-scatters dx to the chunk.
//   RowParallelLinear        the partial outputs of all T are reduce-scattered to the chunk and
//                            the bias added to it; backward all-gathers dy (the chunk) so dx,
//                            dW and db see all T, exactly as without SP.
//   VocabParallelEmbedding   the partial lookup of all T ids is reduce-scattered to the chunk;
//                            backward all-gathers dout.
//   VocabParallelCrossEntropy  unchanged: the head (column-parallel) gives it all B*T rows.
// Replicated parameters applied to the chunk only (norm weights and biases, learned positions)
// then get a partial gradient, this chunk's share: SequenceParallelGradients sums them over tp
// before the optimizer.
//
// Why a staging copy: the collectives concatenate the ranks' flat buffers, so what they move
// is rank-major, [tp, B, T/tp, C], while kiln's activations are [B, T, C] with the batch
// outermost (a rank's chunk is B separate runs of T/tp rows). The gather and the scatter go
// through a rank-major staging buffer with B x tp block copies, each one contiguous run of
// T/tp rows (memcpy speed; O(BTC) beside the GEMMs' O(BTC x width)). That keeps every GEMM one
// call on an ordinary [B, T, C] tensor, the attention's [B, T, H, Dh] views as they are, and
// the model's layout the same with and without SP. With B = 1 both layouts are the same bytes
// and nothing is copied.
//
// A layer built without a communicator is the serial op, so the model runs one code path
// under every layout.
#include <cstdint>
#include <vector>

#include "kernels/memory/device_buffer.hpp"
#include "kernels/ops.hpp"
#include "parallel/communicator.hpp"

namespace kiln::parallel {

enum class SequenceParallel : std::uint8_t { off, on };

// Scratch of the sequence-parallel collectives, [B, T, C] each (contiguous): `full` holds a
// gathered input or a partial output before its reduce-scatter, `staging` the same rank-major.
// Undefined without SP.
struct SequenceScratch {
  Tensor full;
  Tensor staging;
};

// full [B, T, C] = every rank's chunk [B, T/tp, C] side by side along T (rank r's at r T/tp).
void all_gather_sequence(Communicator& tp, Tensor full, Tensor chunk, Tensor staging);
// chunk [B, T/tp, C] = this rank's chunk of the sum over tp of full [B, T, C].
void reduce_scatter_sequence(Communicator& tp, Tensor chunk, Tensor full, Tensor staging);

// The real vocabulary rows [first, first + valid) of one tp rank's shard of the padded
// vocabulary (valid = 0: a shard of padding rows only).
struct VocabShard {
  std::int64_t first = 0;
  std::int64_t valid = 0;
  std::int64_t vocab_size = 0;  // the whole real vocabulary
  // Rank `tp_rank` of `tp_size` holds padded_vocab / tp_size consecutive rows.
  static VocabShard of(std::int64_t vocab_size, std::int64_t padded_vocab, int tp_rank,
                       int tp_size);
};

class ColumnParallelLinear {
 public:
  explicit ColumnParallelLinear(Communicator* tp = nullptr,
                                SequenceParallel sequence = SequenceParallel::off)
      : tp_(tp), sequence_(sequence) {}
  // y [..., out/tp] = x W^T + b with this rank's rows of W and b. SP: x is this rank's chunk
  // [B, T/tp, in], y covers the whole sequence [B, T, out/tp].
  void forward(Tensor y, Tensor x, Tensor w, Tensor b = {}, const SequenceScratch& scratch = {}) const;
  // dx [..., in] = sum over tp of dy W (the full input gradient on every rank); dw, db +=.
  // SP: dx is this rank's chunk [B, T/tp, in] of that sum, x the chunk as in forward.
  void backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                const SequenceScratch& scratch = {}) const;

 private:
  bool sequence_parallel() const;
  Communicator* tp_;
  SequenceParallel sequence_;
};

class RowParallelLinear {
 public:
  explicit RowParallelLinear(Communicator* tp = nullptr,
                             SequenceParallel sequence = SequenceParallel::off)
      : tp_(tp), sequence_(sequence) {}
  // y [..., out] = sum over tp of x W^T, + b once. zero_ids: index tensor of zeros, one per
  // row of y (the bias is added as a lookup of row 0 of a [1, out] table for every row of y).
  // SP: y is this rank's chunk [B, T/tp, out] of the sum over the whole sequence.
  void forward(Tensor y, Tensor x, Tensor w, Tensor b, Tensor zero_ids,
               const SequenceScratch& scratch = {}) const;
  // dx [..., in/tp] = dy W (local and exact: dy is replicated); dw, db +=. SP: dy is this
  // rank's chunk [B, T/tp, out], gathered first (so db is whole, not a partial sum).
  void backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                const SequenceScratch& scratch = {}) const;

 private:
  bool sequence_parallel() const;
  Communicator* tp_;
  SequenceParallel sequence_;
};

class VocabParallelEmbedding {
 public:
  VocabParallelEmbedding() = default;
  VocabParallelEmbedding(Communicator* tp, VocabShard shard,
                         SequenceParallel sequence = SequenceParallel::off)
      : tp_(tp), shard_(shard), sequence_(sequence) {}
  // out [..., C] = table[ids] (the full embedding on every rank). SP: ids [B, T], out this
  // rank's chunk [B, T/tp, C].
  void forward(Tensor out, Tensor ids, Tensor table, const SequenceScratch& scratch = {}) const;
  // dtable [V/tp, C] += scatter-add of dout by the ids this rank holds. SP: dout is the chunk.
  void backward(Tensor dtable, Tensor dout, Tensor ids, const SequenceScratch& scratch = {}) const;

 private:
  bool sequence_parallel() const;
  Communicator* tp_ = nullptr;
  VocabShard shard_;
  SequenceParallel sequence_ = SequenceParallel::off;
};

class VocabParallelCrossEntropy {
 public:
  // Row statistics the tp forward combines: row_max [N], exp_and_target [2, N] (sum of exp,
  // target logit), one buffer so that a single all-reduce carries both sums.
  struct Scratch {
    Tensor row_max;
    Tensor exp_and_target;
  };

  VocabParallelCrossEntropy() = default;
  VocabParallelCrossEntropy(Communicator* tp, VocabShard shard) : tp_(tp), shard_(shard) {}
  // logits [N, V/tp] -> losses [N], lse [N], loss_sum [2] f64, the same on every tp rank.
  void forward(Tensor losses, Tensor lse, Tensor loss_sum, Tensor logits, Tensor targets,
               Tensor mask, const Scratch& scratch) const;
  // dlogits [N, V/tp] = (softmax - onehot) * mask * grad_scale on this rank's columns; may
  // be logits (in place).
  void backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse, Tensor mask,
                double grad_scale) const;

 private:
  Communicator* tp_ = nullptr;
  VocabShard shard_;
};

// Completes the gradients that sequence parallelism leaves partial: those of the replicated
// parameters applied to this rank's chunk only, whose gradient on each rank is its chunk's
// share. Megatron all-reduces its "sequence-parallel" parameters' gradients the same way: one
// all-reduce over tp of the ranges packed into one buffer.
class SequenceParallelGradients {
 public:
  SequenceParallelGradients() = default;  // nothing to complete (no SP)
  // `ranges`: where those parameters sit in the flat gradient buffer (of dtype `dtype`).
  SequenceParallelGradients(Communicator& tp, std::vector<ops::FlatRange> ranges, DType dtype,
                            memory::Allocator& allocator);
  // `grads` holds elements [first, first + grads.numel()) of the flat gradient buffer: all of
  // it, or this rank's ZeRO shard after the data-parallel reduction (both are sums, so their
  // order does not matter). Sums, in place, the parts of the ranges that lie in it over tp.
  // Every rank of the tp group calls it with the same `first` and size.
  void complete(Tensor grads, std::int64_t first);
  const std::vector<ops::FlatRange>& ranges() const { return ranges_; }

 private:
  Communicator* tp_ = nullptr;
  std::vector<ops::FlatRange> ranges_;
  memory::DeviceBuffer packed_;  // room for every range at once
};

}  // namespace kiln::parallel
