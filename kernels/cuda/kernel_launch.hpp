#pragma once
// The one place a failed kernel launch becomes a kiln::Error, for the GPU and the emulator
// alike (KILN_LAUNCH in cuda_compat.cuh calls it). Plain C++17 declarations: nvcc includes it.
namespace kiln::cuda_launch {

// Throws kiln::Error: "CUDA kernel <kernel>: launch failed: <error_name> (<error_text>)[: detail]".
[[noreturn]] void fail_kernel_launch(const char* kernel, const char* error_name, const char* error_text,
                                     const char* detail);

}  // namespace kiln::cuda_launch

namespace kiln::cuda_launch {

// Throws kiln::Error: "CUDA kernel <kernel>: <problem>", for arguments a host wrapper refuses.
[[noreturn]] void fail_kernel_argument(const char* kernel, const char* problem);

}  // namespace kiln::cuda_launch
