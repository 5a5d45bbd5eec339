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
// A layer built without a communicator is the serial op, so the model runs one code path
// under every layout.
#include <cstdint>

#include "kernels/ops.hpp"
#include "parallel/communicator.hpp"

namespace kiln::parallel {

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
  explicit ColumnParallelLinear(Communicator* tp = nullptr) : tp_(tp) {}
  // y [..., out/tp] = x W^T + b with this rank's rows of W and b.
  void forward(Tensor y, Tensor x, Tensor w, Tensor b = {}) const;
  // dx [..., in] = sum over tp of dy W (the full input gradient on every rank); dw, db +=.
  void backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w) const;

 private:
  Communicator* tp_;
};

class RowParallelLinear {
 public:
  explicit RowParallelLinear(Communicator* tp = nullptr) : tp_(tp) {}
  // y [..., out] = sum over tp of x W^T, + b once. zero_ids: [...] index tensor of zeros
  // (the bias is added as a lookup of row 0 of a [1, out] table for every row of y).
  void forward(Tensor y, Tensor x, Tensor w, Tensor b, Tensor zero_ids) const;
  // dx [..., in/tp] = dy W (local and exact: dy is replicated); dw, db +=.
  void backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w) const;

 private:
  Communicator* tp_;
};

class VocabParallelEmbedding {
 public:
  VocabParallelEmbedding() = default;
  VocabParallelEmbedding(Communicator* tp, VocabShard shard) : tp_(tp), shard_(shard) {}
  // out [..., C] = table[ids] (the full embedding on every rank).
  void forward(Tensor out, Tensor ids, Tensor table) const;
  // dtable [V/tp, C] += scatter-add of dout by the ids this rank holds.
  void backward(Tensor dtable, Tensor dout, Tensor ids) const;

 private:
  Communicator* tp_ = nullptr;
  VocabShard shard_;
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

}  // namespace kiln::parallel
