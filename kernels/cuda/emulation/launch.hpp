#pragma once
// Kernel launch on the emulated device: the checks the CUDA runtime makes at a launch, then
// run_grid. A failed check sets the last error (cudaGetLastError), as on the GPU; the launch
// helper of cuda_compat.cuh turns it into a kiln::Error naming the kernel.
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/cuda/emulation/execution.hpp"
#include "kernels/cuda/emulation/runtime.hpp"

namespace kiln::emu {

// Grid and block limits of sm_90 (CUDA programming guide, compute capability 9.0).
// Returns cudaSuccess, or the error the runtime gives and why.
struct LaunchProblem {
  cudaError_t error = cudaSuccess;
  std::string detail;
};
LaunchProblem check_launch_shape(const GridShape& shape, std::size_t shared_limit);

// A pointer argument must be null or reachable by a kernel (cudaMalloc or cudaMallocHost);
// a host pointer would fault on the GPU. Pointers inside structs are not seen.
template <class Argument>
std::string check_pointer_argument(const char* kernel, int position, const Argument& argument) {
  if constexpr (std::is_pointer_v<Argument>) {
    if (argument && !is_kernel_accessible(argument))
      return std::string("kernel ") + kernel + ": argument " + std::to_string(position) +
             " is not device memory (a host pointer, or freed; kernels reach only cudaMalloc and "
             "cudaMallocHost memory)";
  }
  return {};
}

template <class... Parameters, class... Arguments>
void launch(const char* name, void (*kernel)(Parameters...), dim3 grid, dim3 block, std::size_t shared_bytes,
            cudaStream_t stream, Arguments&&... arguments) {
  static_assert(sizeof...(Parameters) == sizeof...(Arguments), "the launch passes as many arguments as the kernel takes");
  const GridShape shape{name, grid, block, shared_bytes};
  LaunchProblem shape_problem = check_launch_shape(shape, dynamic_shared_limit(reinterpret_cast<const void*>(kernel)));
  if (shape_problem.error != cudaSuccess) {
    record_error(shape_problem.error, std::move(shape_problem.detail));
    return;
  }
  if (!is_live_stream(stream)) {
    record_error(cudaErrorInvalidResourceHandle, std::string("kernel ") + name + ": the stream was never created or is destroyed");
    return;
  }
  // Parameters are passed by value, converted once, as the CUDA runtime copies them.
  std::tuple<std::decay_t<Parameters>...> values(std::forward<Arguments>(arguments)...);
  std::string problem;
  int position = 0;
  std::apply([&](const auto&... value) {
    ((problem.empty() ? (void)(problem = check_pointer_argument(name, position++, value)) : void()), ...);
  }, values);
  if (!problem.empty()) {
    record_error(cudaErrorIllegalAddress, std::move(problem));
    return;
  }
  run_grid(shape, [&] { std::apply(kernel, values); });
}

}  // namespace kiln::emu
