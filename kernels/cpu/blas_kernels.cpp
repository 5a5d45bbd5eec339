#include "kernels/cpu/blas_kernels.hpp"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace kiln::kernels {

namespace {

// The best OpenBLAS core this CPU can run, or nullptr when the generic one is all it has.
const char* best_core_for_this_cpu() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

}  // namespace

const char* blas_kernel_name() { return openblas_get_corename(); }

const char* blas_threading() {
  switch (openblas_get_parallel()) {
    case 0: return "sequential";
    case 1: return "pthreads";
    default: return "OpenMP";
  }
}

void select_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::getenv("KILN_KEEP_BLAS_KERNELS") != nullptr) return;
  if (std::strcmp(openblas_get_corename(), "Prescott") != 0) return;
  const char* core = best_core_for_this_cpu();
  if (core == nullptr) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  // Marks the re-executed process so that a failure to switch can never loop.
  setenv("KILN_KEEP_BLAS_KERNELS", "1", 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc, say): carry on with the kernels already loaded.
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace kiln::kernels
