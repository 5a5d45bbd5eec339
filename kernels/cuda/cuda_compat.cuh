#pragma once
// One kernel source, two compilers (kernels/cuda/emulation/README.md). A kiln .cu file
// includes this header and nothing else CUDA-specific:
//  - under nvcc (and for host code of the real backend) it is the CUDA runtime and bf16
//    headers, and kernels land in namespace kiln::cuda;
//  - in a translation unit of the emulated device (KILN_CUDA_EMULATION_TU, set by the
//    kiln_cuda_emulation library and its tests, compiled by g++ as C++20) it maps the CUDA
//    keywords, built-in variables, types and intrinsics onto kernels/cuda/emulation, and
//    kernels land in namespace kiln::cuda_emu, so both builds link into one binary.
//
// What a kernel source writes differently from plain CUDA:
//  - KILN_LAUNCH(kernel, grid, block, shared_bytes, stream, args...) instead of <<<>>>; it
//    also turns a failed launch into kiln::Error naming the kernel (KILN_LAUNCH_NAMED for a
//    kernel held in a function pointer);
//  - KILN_DYNAMIC_SHARED(T, name) instead of `extern __shared__ T name[]` (it declares a T*);
//  - KILN_UNROLL before a loop of compile-time trip count whose per-iteration registers must
//    stay registers (`#pragma unroll` under nvcc; nothing for g++), KILN_NO_UNROLL before one
//    whose iterations must not overlap (`#pragma unroll 1`: register pressure);
//  - namespace kiln::KILN_CUDA_NS around its host wrappers;
//  - only C++17 (CMake's nvcc dialect), and __expf/__logf take one plain argument.
#include "kernels/cuda/kernel_launch.hpp"

#if defined(KILN_CUDA_EMULATION_TU)

#include "kernels/cuda/emulation/intrinsics.hpp"
#include "kernels/cuda/emulation/launch.hpp"
#include "kernels/cuda/emulation/runtime.hpp"
#include "kernels/cuda/emulation/types.hpp"

// The CUDA names resolve to the emulator's in code that includes this header (kernel sources
// and the emulated tests only; nothing else in kiln sees these names).
using namespace kiln::emu;  // NOLINT(google-global-names-in-headers)

#define KILN_CUDA_NS cuda_emu
#define KILN_CUDA_EMULATED 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(bytes) alignas(bytes)
// Static shared memory: one object per kernel (and per OS thread), shared by the fibers of the
// running block. Blocks run one after another, so it is private to a block while it runs; it
// is not poisoned between blocks (see README.md).
#define __shared__ static thread_local
#define KILN_UNROLL
#define KILN_NO_UNROLL
#define __expf(x) ::kiln::emu::exp_intrinsic(x)
#define __logf(x) ::kiln::emu::log_intrinsic(x)

#define KILN_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(::kiln::emu::dynamic_shared_memory())

#define KILN_LAUNCH_NAMED(name, kernel, grid, block, shared_bytes, stream, ...)           \
  do {                                                                                   \
    ::kiln::emu::launch(name, kernel, grid, block, shared_bytes, stream, __VA_ARGS__);   \
    ::kiln::cuda_launch::check_launch(name, ::kiln::emu::last_error_detail().c_str());  \
  } while (0)

#else  // nvcc, or host code of the real backend

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#define KILN_UNROLL _Pragma("unroll")
#define KILN_NO_UNROLL _Pragma("unroll 1")

#define KILN_CUDA_NS cuda
#define KILN_CUDA_EMULATED 0

#define KILN_DYNAMIC_SHARED(type, name)                      \
  extern __shared__ __align__(16) unsigned char kiln_dynamic_shared_memory[]; \
  type* name = reinterpret_cast<type*>(kiln_dynamic_shared_memory)

#define KILN_LAUNCH_NAMED(name, kernel, grid, block, shared_bytes, stream, ...) \
  do {                                                                         \
    kernel<<<grid, block, shared_bytes, stream>>>(__VA_ARGS__);                \
    ::kiln::cuda_launch::check_launch(name, nullptr);                          \
  } while (0)

#endif

// The kernel's name in errors is its spelling; KILN_LAUNCH_NAMED names a kernel chosen at run
// time (a function pointer to one of several instantiations).
#define KILN_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  KILN_LAUNCH_NAMED(#kernel, kernel, grid, block, shared_bytes, stream, __VA_ARGS__)

namespace kiln::cuda_launch {

inline void check_launch(const char* kernel, const char* detail) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) fail_kernel_launch(kernel, cudaGetErrorName(error), cudaGetErrorString(error), detail);
}

}  // namespace kiln::cuda_launch
