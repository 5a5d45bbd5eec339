#pragma once
// The CUDA device the tests run on: the emulated device in kiln_cuda_emulation_tests, the GPU
// in kiln_cuda_tests.
#include "kernels/cuda/backend.hpp"
#include "kernels/cuda/backend_registry.hpp"
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/flash_attention.hpp"

namespace kiln::cuda_test {

inline void select_the_test_device() {
#if KILN_CUDA_EMULATED
  kiln::cuda_emu::register_emulated_backend();
  cuda_backend::select_cuda_backend(cuda_backend::BackendKind::Emulated, "test");
#else
  kiln::cuda::register_gpu_backend();
  cuda_backend::select_cuda_backend(cuda_backend::BackendKind::Gpu, "test");
#endif
}

// Runs the tensor-core attention on `kernel` (and blocks of `warps` warps) while it lives;
// back to the defaults (mma.sync, 4 warps) after.
class FlashAttentionVariant {
 public:
  FlashAttentionVariant(KILN_CUDA_NS::FlashKernels kernel, int warps) {
    KILN_CUDA_NS::set_flash_attention_kernels(kernel);
    KILN_CUDA_NS::set_flash_attention_block_warps(warps);
  }
  ~FlashAttentionVariant() {
    KILN_CUDA_NS::set_flash_attention_kernels(KILN_CUDA_NS::FlashKernels::mma_sync);
    KILN_CUDA_NS::set_flash_attention_block_warps(4);
  }
  FlashAttentionVariant(const FlashAttentionVariant&) = delete;
  FlashAttentionVariant& operator=(const FlashAttentionVariant&) = delete;
};

}  // namespace kiln::cuda_test
