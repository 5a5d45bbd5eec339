#pragma once
// A group of consecutive kernel elements as fp32 registers: one 16-byte Pack when the caller
// proved the addresses aligned (kPacked), one element otherwise. Lets a kernel write its body
// once and be instantiated for the vectorised path and the scalar path (unaligned pointers,
// a row length that is not a multiple of the pack width).
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace kiln::KILN_CUDA_NS {

template <class T, bool kPacked>
struct ElementGroup {
  static constexpr int kWidth = kPacked ? Pack<T>::kWidth : 1;
  __device__ __forceinline__ static void load(const T* address, float* values) {
    if constexpr (kPacked) {
      Pack<T>::load(address, values);
    } else {
      values[0] = to_fp32(address[0]);
    }
  }
  __device__ __forceinline__ static void store(T* address, const float* values) {
    if constexpr (kPacked) {
      Pack<T>::store(address, values);
    } else {
      address[0] = from_fp32<T>(values[0]);
    }
  }
};

// Host side: blocks for a grid-stride loop over `work` items, capped so that a huge tensor
// reuses threads instead of launching millions of blocks (132 SMs x 16 resident blocks of 256).
inline unsigned grid_stride_blocks(std::int64_t work, int threads, std::int64_t max_blocks = 132 * 16) {
  const std::int64_t wanted = (work + threads - 1) / threads;
  return static_cast<unsigned>(wanted < 1 ? 1 : (wanted < max_blocks ? wanted : max_blocks));
}

}  // namespace kiln::KILN_CUDA_NS
