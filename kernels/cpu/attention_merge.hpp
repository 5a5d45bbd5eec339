#pragma once
// Merges a partial attention result into a running one (ring attention, DESIGN.md §6: each
// block of keys gives its own softmax over those keys; online softmax joins them):
//   out, part [B, T, H, D] (unit stride over D), lse, part_lse [B, H, T] (any strides)
//   lse' = log(exp(lse) + exp(part_lse))
//   out' = exp(lse - lse') out + exp(part_lse - lse') part
// lse = -inf means no key seen yet (out is then replaced, whatever it held); part_lse = -inf
// leaves the row as it is.
#include <cstdint>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

// Strides of a [B, H, T] statistics tensor.
struct StatStrides {
  std::int64_t batch = 0, head = 0, seq = 0;
};

template <class T>
void merge_attention(HeadView<T> out, T* lse, StatStrides lse_strides, HeadView<const T> part, const T* part_lse,
                     StatStrides part_strides);

}  // namespace kiln::cpu
