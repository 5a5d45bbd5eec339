#pragma once
// Tiled flash attention on the CPU (causal, GQA, packed documents), O(T) extra memory.
//   q [B, Tq, Hq, D], k/v [B, Tk, Hkv, D], doc_ids [B, Tk] or null
//   forward:  -> out [B, Tq, Hq, D], lse [B, Hq, Tq]
//   backward: dout [B, Tq, Hq, D] -> dq [B, Tq, Hq, D], dk/dv [B, Tk, Hkv, D] (overwritten)
// Query i sits at key position (Tk - Tq + i). It sees keys in its document (a run of equal
// consecutive doc ids) and, when causal, at or before its position. Query head h reads kv
// head h / (Hq / Hkv).
//
// Forward: one task per (batch, query head, 64-query tile); an online softmax walks the
// 64-key tiles in range, so no T x T matrix exists.
// Backward: the probabilities are recomputed from q, k and lse in two passes, each output
// tile owned by one task (deterministic, no atomics):
//   pass 1, per (batch, kv head, key tile): dv += P^T dO, dk += dS^T q over every query
//           head of the group and every query tile that sees the keys;
//   pass 2, per (batch, query head, query tile): dq += dS k.
#include <cstdint>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void flash_attention_forward(HeadView<T> out, T* lse, HeadView<const T> q, HeadView<const T> k,
                             HeadView<const T> v, const std::int64_t* doc_ids, bool causal,
                             double scale);

template <class T>
void flash_attention_backward(HeadView<T> dq, HeadView<T> dk, HeadView<T> dv,
                              HeadView<const T> dout, HeadView<const T> q, HeadView<const T> k,
                              HeadView<const T> v, HeadView<const T> out, const T* lse,
                              const std::int64_t* doc_ids, bool causal, double scale);

}  // namespace kiln::cpu
