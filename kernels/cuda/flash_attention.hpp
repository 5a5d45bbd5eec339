#pragma once
// Tensor-core attention: bf16 q, k, v with head dims 64 and 128, forward and backward, the fast
// path of attention.hpp's attention_forward/attention_backward with the same tensors and
// semantics (causal or not, grouped-query heads, packed documents, queries that are the last Tq
// of Tk positions). Scores, softmax statistics and every accumulation are f32; the
// probabilities (and their gradients) enter the second product of each pass rounded to bf16, as
// in FlashAttention-2, so results agree with the f32 CUDA-core kernels to bf16 accuracy, not
// bitwise. Still deterministic: no atomics, a fixed order per output element.
//   mma.sync m16n8k16 (bf16 in, f32 accumulate), one 16-row tile per warp, 4 warps per block
//   (or 8: set_flash_attention_block_warps), shown for 4:
//   forward  grid (Tq / 64, Hq, B): a warp's 16 queries walk 64-key tiles with an online softmax
//   dq       grid (Tq / 64, Hq, B): the same walk, dq += ds k
//   dk, dv   grid (Tk / 64, Hkv, B): a warp's 16 keys walk every (query head of the group, query
//            tile) that sees them: dv += p^T dout, dk += ds^T q (head dim 128: each query
//            tile in two halves, so a half's p and ds fit in registers beside dk and dv)
//   or, on sm_90a (set_flash_attention_kernels), the same three kernels on wgmma, a warpgroup
//   of 4 warps owning 64 rows (flash_attention_wgmma.cu, flash_attention_wgmma_backward.cu).
#include "kernels/cuda/attention.hpp"

namespace kiln::KILN_CUDA_NS {

// Whether the tensor-core kernels take these tensors: bf16 (the caller's choice of overload),
// head dim 64 or 128, 16-byte aligned rows (pointers and strides multiples of 8 elements).
bool flash_attention_forward_supports(const AttentionShape& shape, const AttentionForward<__nv_bfloat16>& args);
bool flash_attention_backward_supports(const AttentionShape& shape, const AttentionBackward<__nv_bfloat16>& args);

// Warps per block, 4 (the default) or 8: a benchmark's knob (scripts/bench_attention_gpu.sh
// compares them); anything else is kiln::Error. Process-wide, not thread-safe.
void set_flash_attention_block_warps(int warps);
int flash_attention_block_warps();

// Which tensor-core kernels run, forward and backward: mma.sync (sm_80 and later, the default)
// or Hopper's warpgroup MMA (wgmma: flash_attention_wgmma.cu, flash_attention_wgmma_backward.cu;
// sm_90a only). Same tensors, semantics and accuracy. Process-wide, not thread-safe; choosing
// wgmma where it was not built (nvcc for an architecture other than sm_90a) is kiln::Error. The
// emulated device always has it.
enum class FlashKernels { mma_sync, wgmma };
bool flash_attention_wgmma_built();
void set_flash_attention_kernels(FlashKernels kernel);
FlashKernels flash_attention_kernels();
// The wgmma kernels themselves (flash_attention_forward/backward dispatch to them): one
// warpgroup per 64 queries (forward, dq) or keys (dk, dv), `warps` 4 or 8 per block.
void flash_attention_forward_wgmma(const AttentionShape& shape, const AttentionForward<__nv_bfloat16>& args, int warps,
                                   cudaStream_t stream);
void flash_attention_backward_wgmma(const AttentionShape& shape, const AttentionBackward<__nv_bfloat16>& args,
                                    int warps, cudaStream_t stream);

void flash_attention_forward(const AttentionShape& shape, const AttentionForward<__nv_bfloat16>& args,
                             cudaStream_t stream);
void flash_attention_backward(const AttentionShape& shape, const AttentionBackward<__nv_bfloat16>& args,
                              cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
