#pragma once
// How a CUDA backend makes itself selectable (kernels/cuda/backend.hpp). The real one
// registers from kiln_kernels (builds with CUDA); the emulated one from kiln_cuda_emulation,
// when a program that links it calls kiln::cuda_emu::register_emulated_backend().
#include <string>

#include "kernels/cuda/backend.hpp"

namespace kiln::cuda_backend {

// Returns the process's backend of that kind, creating it on first use; throws kiln::Error
// naming `setting` when the device is not usable (no driver, no GPU, compute capability < 8.0).
using BackendFactory = CudaBackend& (*)(const std::string& setting);

void register_cuda_backend(BackendKind kind, BackendFactory factory);

}  // namespace kiln::cuda_backend

namespace kiln::cuda_emu {
// Defined in kernels/cuda/host/ (emulated build): registers the emulated device.
void register_emulated_backend();
}  // namespace kiln::cuda_emu

namespace kiln::cuda {
// Defined in kernels/cuda/host/ (CUDA build): registers the GPU.
void register_gpu_backend();
}  // namespace kiln::cuda
