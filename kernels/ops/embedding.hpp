#pragma once
// kiln::ops — Token and position embeddings, plain and vocab-parallel.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

// ids [...] (index dtype), table [V, C] -> out [..., C]. An id outside [0, V) is an error.
// Accumulate::Yes adds into out (token + learned position embeddings, GPT-2).
void embedding_forward(Tensor out, Tensor ids, Tensor table,
                       Accumulate accumulate = Accumulate::No);
// dtable [V, C] += scatter-add of dout [..., C] by ids. Deterministic (no atomics): the
// result does not depend on the thread count.
void embedding_backward(Tensor dtable, Tensor dout, Tensor ids);

// Vocab-parallel variant (tensor parallelism, §6): this rank holds rows
// [first_id, first_id + V) of the table; ids outside that range give zero rows (forward)
// and are skipped (backward). The all-reduce over tp ranks is the caller's.
void embedding_forward_vocab_parallel(Tensor out, Tensor ids, Tensor table, std::int64_t first_id);
void embedding_backward_vocab_parallel(Tensor dtable, Tensor dout, Tensor ids,
                                       std::int64_t first_id);

}  // namespace kiln::ops
