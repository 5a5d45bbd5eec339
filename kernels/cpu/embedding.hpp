#pragma once
// Embedding lookup and its scatter-add backward (token and learned position embeddings).
//   forward:  ids [N], table [V, C] (rows first_id .. first_id + V - 1) -> out [N, C]
//             (= or +=); ids outside the table give zero rows (vocab-parallel shards)
//   backward: dout [N, C], ids [N] -> dtable [V, C] += rows of dout gathered by id
#include <cstdint>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

template <class T>
void embedding_forward(RowView<T> out, const std::int64_t* ids, const T* table,
                       std::int64_t table_rows, std::int64_t first_id, bool accumulate);

// Deterministic without atomics: rows are grouped by id (a stable counting sort), then each
// table row is owned by one thread and sums its dout rows in token order.
template <class T>
void embedding_backward(T* dtable, std::int64_t table_rows, RowView<const T> dout,
                        const std::int64_t* ids, std::int64_t first_id);

}  // namespace kiln::cpu
