#pragma once
// Attention on the device with kiln::ops::flash_attention_forward/backward's semantics:
// causal or not, grouped-query heads, packed documents, queries that are the last Tq of Tk
// positions (a KV cache). Tiled with an online softmax in fp32, so no T x T matrix exists;
// fp32 CUDA-core arithmetic, except bf16 with head dims 64 and 128, which take
// the tensor-core kernels of flash_attention.hpp.
//   q, out, dq, dout [B, Tq, Hq, D]   k, v, dk, dv [B, Tk, Hkv, D]   (f32 or bf16, strided
//                                                                      heads, unit inner stride)
//   lse [B, Hq, Tq] f32 (natural log of the scaled scores' sum of exp; +inf: no visible key)
//   doc_ids [B, Tk] i32 or null: a query sees only keys of its own run of equal ids
// 1 <= D <= 128. Deterministic: every output element is computed by one thread in a fixed
// order, so the backward needs no atomics and a run resumes bit for bit.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

inline constexpr std::int64_t kAttentionMaxHeadDim = 128;

// A [B, T, H, D] tensor in device memory: element (b, t, h, d) at
// data[b * batch_stride + t * seq_stride + h * head_stride + d].
template <class T>
struct HeadTensor {
  T* data = nullptr;
  std::int64_t batch_stride = 0, seq_stride = 0, head_stride = 0;

  __device__ __forceinline__ T* row(std::int64_t b, std::int64_t t, std::int64_t h) const {
    return data + b * batch_stride + t * seq_stride + h * head_stride;
  }
};

struct AttentionShape {
  std::int64_t batch = 0, tq = 0, tk = 0, heads = 0, kv_heads = 0, dim = 0;
  bool causal = true;
  float scale = 1.0f;  // applied to q . k
};

template <class T>
struct AttentionForward {
  HeadTensor<T> out;
  float* lse = nullptr;
  HeadTensor<const T> q, k, v;
  const std::int32_t* doc_ids = nullptr;
};

template <class T>
struct AttentionBackward {
  HeadTensor<T> dq, dk, dv;  // overwritten; dk, dv summed over each kv head's query heads
  HeadTensor<const T> dout, q, k, v, out;
  const float* lse = nullptr;
  const std::int32_t* doc_ids = nullptr;
};

void attention_forward(const AttentionShape& shape, const AttentionForward<float>& args, cudaStream_t stream);
void attention_forward(const AttentionShape& shape, const AttentionForward<__nv_bfloat16>& args,
                       cudaStream_t stream);
void attention_backward(const AttentionShape& shape, const AttentionBackward<float>& args, cudaStream_t stream);
void attention_backward(const AttentionShape& shape, const AttentionBackward<__nv_bfloat16>& args,
                        cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
