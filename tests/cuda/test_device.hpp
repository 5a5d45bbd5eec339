#pragma once
// The CUDA device the tests run on: the emulated device in kiln_cuda_emulation_tests, the GPU
// in kiln_cuda_tests.
#include "kernels/cuda/backend.hpp"
#include "kernels/cuda/backend_registry.hpp"
#include "kernels/cuda/cuda_compat.cuh"

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

}  // namespace kiln::cuda_test
