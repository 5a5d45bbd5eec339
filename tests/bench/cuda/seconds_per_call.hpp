#pragma once
// Timing for the GPU benchmark programs (tests/bench/cuda): seconds per call of `call`, after
// calling it for `warm_up` first (module load, caches, and the clocks, which an idle GPU holds
// low: an H200 idles at 345 MHz, and 20 calls straight after start ran at a third of the speed).
#include <chrono>
#include <functional>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::cuda_bench {

inline double seconds_per_call(int reps, const std::function<void()>& call, std::chrono::milliseconds warm_up) {
  const auto warm_until = std::chrono::steady_clock::now() + warm_up;
  do {
    call();
    cudaDeviceSynchronize();
  } while (std::chrono::steady_clock::now() < warm_until);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) call();
  cudaDeviceSynchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps;
}

}  // namespace kiln::cuda_bench
