#pragma once
// The plain views the CPU kernels work on. kiln::ops turns checked Tensors into these, so a
// kernel sees raw pointers, extents and strides and nothing else (llm.c style).
#include <cstdint>

namespace kiln::cpu {

// Hot kernels are compiled for baseline x86-64 and again for x86-64-v3 (AVX2) and -v4
// (AVX-512); the dynamic loader picks the best clone for the running CPU. So the library runs
// on any x86-64 machine without a global -march flag, yet uses wide vectors where they exist.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KILN_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KILN_SIMD_CLONES
#endif

// Below about this many elements of work, waking a thread team costs more than it saves
// (small layers, decode steps, the tests' finite differences): loops then run serially via
// `#pragma omp parallel for if (parallel_worth(work))`.
constexpr bool parallel_worth(std::int64_t elements) { return elements >= (std::int64_t{1} << 15); }

// A matrix of `rows` rows of `cols` contiguous elements, `stride` elements apart: a
// contiguous [..., C] tensor flattened to rows, or a column slice of a wider buffer.
template <class T>
struct RowView {
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;

  T* row(std::int64_t i) const { return data + i * stride; }
  bool defined() const { return data != nullptr; }
};

// Attention-shaped [B, T, H, D] with unit stride over D (q, k, v inside a fused QKV buffer).
template <class T>
struct HeadView {
  T* data = nullptr;
  std::int64_t batch = 0, seq = 0, heads = 0, dim = 0;
  std::int64_t batch_stride = 0, seq_stride = 0, head_stride = 0;

  T* at(std::int64_t b, std::int64_t t, std::int64_t h) const {
    return data + b * batch_stride + t * seq_stride + h * head_stride;
  }
};

}  // namespace kiln::cpu
