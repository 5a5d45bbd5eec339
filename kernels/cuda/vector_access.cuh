#pragma once
// 128-bit loads and stores of kernel elements, converted to and from fp32 registers: the
// Hopper pattern every elementwise and norm kernel follows (one 16-byte transaction per
// thread per step; fp32 arithmetic whatever the storage).
//   Pack<float>:          4 elements per 16 bytes (float4)
//   Pack<__nv_bfloat16>:  8 elements per 16 bytes (uint4 = 4 x __nv_bfloat162)
#include <cstdint>
#include <cstring>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

__device__ __forceinline__ float to_fp32(float value) { return value; }
__device__ __forceinline__ float to_fp32(__nv_bfloat16 value) { return __bfloat162float(value); }

template <class T>
__device__ __forceinline__ T from_fp32(float value);
template <>
__device__ __forceinline__ float from_fp32<float>(float value) {
  return value;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_fp32<__nv_bfloat16>(float value) {
  return __float2bfloat16_rn(value);
}

// One aligned 16-byte word. On the GPU a plain dereference (ld.global.v4); in the emulator a
// memcpy, since reading bf16 or float objects through a uint4 lvalue breaks C++ aliasing rules
// that g++ optimises on.
template <class Word>
__device__ __forceinline__ Word load_word(const void* address) {
#if KILN_CUDA_EMULATED
  Word word;
  std::memcpy(&word, address, sizeof(Word));
  return word;
#else
  return *reinterpret_cast<const Word*>(address);
#endif
}
template <class Word>
__device__ __forceinline__ void store_word(void* address, const Word& word) {
#if KILN_CUDA_EMULATED
  std::memcpy(address, &word, sizeof(Word));
#else
  *reinterpret_cast<Word*>(address) = word;
#endif
}

template <class T>
struct Pack;

template <>
struct Pack<float> {
  static constexpr int kWidth = 4;
  __device__ __forceinline__ static void load(const float* address, float* values) {
    const float4 word = load_word<float4>(address);
    values[0] = word.x, values[1] = word.y, values[2] = word.z, values[3] = word.w;
  }
  __device__ __forceinline__ static void store(float* address, const float* values) {
    store_word(address, make_float4(values[0], values[1], values[2], values[3]));
  }
};

template <>
struct Pack<__nv_bfloat16> {
  static constexpr int kWidth = 8;
  __device__ __forceinline__ static void load(const __nv_bfloat16* address, float* values) {
    const uint4 word = load_word<uint4>(address);
    __nv_bfloat162 pairs[4];
    std::memcpy(pairs, &word, sizeof(word));
    for (int i = 0; i < 4; ++i) {
      const float2 pair = __bfloat1622float2(pairs[i]);
      values[2 * i] = pair.x, values[2 * i + 1] = pair.y;
    }
  }
  __device__ __forceinline__ static void store(__nv_bfloat16* address, const float* values) {
    __nv_bfloat162 pairs[4];
    for (int i = 0; i < 4; ++i) pairs[i] = __floats2bfloat162_rn(values[2 * i], values[2 * i + 1]);
    uint4 word;
    std::memcpy(&word, pairs, sizeof(word));
    store_word(address, word);
  }
};

// Whether every pointer is 16-byte aligned, so Pack may be used from it.
inline bool aligned_16(const void* address) { return reinterpret_cast<std::uintptr_t>(address) % 16 == 0; }

}  // namespace kiln::KILN_CUDA_NS
