#pragma once
// kiln::ops — Flash attention: causal, GQA, packed documents; forward and backward.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

struct AttentionOptions {
  bool causal = true;
  double softmax_scale = 0.0;  // 0 means 1 / sqrt(Dh)
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

}  // namespace kiln::ops
