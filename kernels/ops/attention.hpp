#pragma once
// kiln::ops — Flash attention: causal, GQA, packed documents; forward and backward.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// Which kernels run the attention of CUDA tensors (`train.attention`): kiln's own, kiln's own
// on Hopper's warpgroup MMA (kernels/cuda/flash_attention_wgmma*.cu: bf16, head dims 64 and
// 128, an sm_90a build), or cuDNN's fused SDPA
// (kernels/cuda/cudnn_sdpa.hpp). The CPU has only kiln's.
enum class AttentionLibrary { kiln, kiln_wgmma, cudnn };

// One document of a packed batch: tokens [start, start + length) of batch row `row`.
struct DocumentRun {
  std::int64_t row = 0, start = 0, length = 0;
};
// A batch's documents in order (row, then start), covering every token once: the runs of
// equal doc_ids, or one per row. document_runs builds them on the host.
using DocumentRuns = std::vector<DocumentRun>;
DocumentRuns document_runs(const std::vector<std::int64_t>& doc_ids, std::int64_t rows, std::int64_t seq_len);

struct AttentionOptions {
  bool causal = true;
  double softmax_scale = 0.0;  // 0 means 1 / sqrt(Dh)
  // cudnn: CUDA bf16 tensors, Tq == Tk, head dim a multiple of 8, and `documents` (host
  // memory) describing doc_ids. Its lse holds the same log-sum-exps token-major, [B, Tq, Hq]
  // in the [B, Hq, Tq] tensor (cuDNN's ragged layout), so only cudnn's backward reads it.
  AttentionLibrary library = AttentionLibrary::kiln;
  const DocumentRuns* documents = nullptr;
};
// q [B, Tq, Hq, Dh], k/v [B, Tk, Hkv, Dh] (Hq % Hkv == 0: query head h reads kv head
// h / (Hq / Hkv); Tq <= Tk, the queries are the last Tq positions, as with a KV cache; strided
// views allowed with unit inner stride), doc_ids [B, Tk] (index dtype) or undefined ->
//   out [B, Tq, Hq, Dh], lse [B, Hq, Tq] (natural-log logsumexp of the scaled scores, saved).
// Documents are runs of equal consecutive doc_ids: a query attends only to keys of its own
// run (and, when causal, at or before its position). Memory O(T): tiled online softmax.
void flash_attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v,
                             Tensor doc_ids = {}, const AttentionOptions& options = {});
// dout [B, Tq, Hq, Dh] -> dq [B, Tq, Hq, Dh], dk/dv [B, Tk, Hkv, Dh] (overwritten; dk/dv sum
// over the query heads that share a kv head). Recomputes the probabilities from q, k and lse
// (no T x T matrix is stored) and is deterministic: each output element is written by one
// thread, in a fixed order.
void flash_attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                              Tensor v, Tensor out, Tensor lse, Tensor doc_ids = {},
                              const AttentionOptions& options = {});

// Ring attention's merge (context parallelism): folds the attention of the same queries over
// another block of keys into out/lse, as one online softmax over both blocks:
//   out, part [B, T, H, D] (strided, unit stride over D), lse, part_lse [B, H, T] (strided)
//   lse' = log(exp(lse) + exp(part_lse)), out' = exp(lse - lse') out + exp(part_lse - lse') part
// lse = -inf: no key seen yet; part_lse = -inf: nothing to add. f32 (and f64 on the CPU).
void merge_attention(Tensor out, Tensor lse, Tensor part, Tensor part_lse);

}  // namespace kiln::ops
