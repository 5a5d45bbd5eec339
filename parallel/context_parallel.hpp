#pragma once
// Context parallelism (DESIGN.md §6; Megatron-LM's context_parallel, Liu et al.'s ring
// attention): the sequence of every sample is split over a cp group of N ranks.
//
// Layout, balanced for causal attention: the T tokens of a row are cut into 2N chunks of
// c = T / (2N); cp rank r holds chunks r and 2N-1-r, side by side, as its [B, 2c] sequence.
// Early chunks see few keys and late chunks many, so every rank gets as much attention work.
// Everything but attention is per token and runs on the local tokens as it is (positions,
// document ids, targets and the loss mask follow their tokens: ContextChunks::take).
//
// RingAttention: each rank attends its queries to the keys and values of every chunk at or
// before them. Its own two chunks first (a causal block each, and the late chunk over the
// early one); then the other ranks' key/value blocks come around the ring, one per step,
// while the rank computes on the block it holds (non-blocking send/recv, on GPUs the
// communication stream), and each block's attention is folded in by online softmax
// (ops::merge_attention: the log-sum-exp carried). The backward walks the ring again from
// the saved output and log-sum-exp: dq accumulates here, while each block's dk/dv travel with
// it and, after a full round, come home to their owner.
//
// Documents (packed batches) are runs of equal ids along the whole row: a query sees a key of
// an earlier chunk only when its document reaches back into that chunk. Within a chunk that
// is its first run only, and those queries see the tail of the earlier chunk from their
// document's start on (ContextChunks records both), so every cross-chunk piece is a plain
// full attention of a query range over a key range, no mask needed; the kernels run on views.
#include <cstdint>
#include <vector>

#include "kernels/memory/arena.hpp"
#include "kernels/tensor.hpp"
#include "parallel/communicator.hpp"

namespace kiln::parallel {

class ContextChunks {
 public:
  ContextChunks() = default;
  // `doc_ids`: the rows' document ids [rows, seq_len] (runs are documents), or empty (one
  // document per row). seq_len must be a multiple of 2 * ranks.
  ContextChunks(const std::vector<std::int64_t>& doc_ids, std::int64_t rows, std::int64_t seq_len, int ranks);

  int ranks() const { return ranks_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t chunk() const { return chunk_; }  // c
  // The global chunk of rank `rank`'s local chunk `local` (0 or 1).
  int global_chunk(int rank, int local) const { return local == 0 ? rank : 2 * ranks_ - 1 - rank; }
  // Of row b's global chunk g: where the document of its first token starts (a global
  // position), and how many of its first tokens are in that document.
  std::int64_t run_start(std::int64_t b, int g) const { return run_start_[index(b, g)]; }
  std::int64_t first_run(std::int64_t b, int g) const { return first_run_[index(b, g)]; }

  // Rank `rank`'s tokens of every row of a [rows, seq_len] host array: [rows, 2c].
  template <class T>
  std::vector<T> take(const std::vector<T>& values, int rank) const;

 private:
  std::size_t index(std::int64_t b, int g) const { return static_cast<std::size_t>(b * 2 * ranks_ + g); }
  int ranks_ = 1;
  std::int64_t rows_ = 0, chunk_ = 0;
  std::vector<std::int64_t> run_start_, first_run_;
};

// Ring attention over a cp group. Tensors as the model holds them for this rank's [B, 2c]
// tokens: q, dq [B, 2c, Hq, D], k, v, dk, dv [B, 2c, Hkv, D] (strided views, unit inner
// stride), doc_ids [B, 2c] (the local ids, or undefined), out, dout [B, 2c, Hq, D]
// (contiguous), lse [B, Hq, 2c]. f32 or f64 on the CPU, f32 on CUDA. Deterministic: a fixed
// order of every sum.
class RingAttention {
 public:
  RingAttention() = default;
  RingAttention(Communicator* cp, memory::Allocator& allocator);

  bool active() const { return cp_ != nullptr && cp_->size() > 1; }
  void forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids, const ContextChunks& chunks);
  void backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse,
                Tensor doc_ids, const ContextChunks& chunks);

 private:
  struct Scratch;
  Scratch& scratch_for(const Tensor& q, const Tensor& k);

  Communicator* cp_ = nullptr;
  memory::Allocator* allocator_ = nullptr;
  std::shared_ptr<Scratch> scratch_;
};

}  // namespace kiln::parallel
