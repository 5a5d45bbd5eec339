#pragma once
// OpenBLAS chooses its compute kernels once, when the library loads, from the CPU model it
// recognises. CPUs newer than the installed OpenBLAS (e.g. Xeon "Emerald Rapids" under Debian
// 12's 0.3.21) fall back to the generic Prescott kernels, 1.3-1.5x slower for kiln's GEMMs
// than the SkylakeX kernels the same CPU runs correctly (measured with scripts/bench_train_cpu.sh).
//
// select_blas_kernels(argv), first thing in main(): when OPENBLAS_CORETYPE is unset and
// OpenBLAS fell back to Prescott on a CPU with AVX-512 (or AVX2 + FMA), it sets
// OPENBLAS_CORETYPE=SkylakeX (or Haswell) and re-executes the program, so the library loads
// again with those kernels. A value set by the user or the machine is never changed, and
// KILN_KEEP_BLAS_KERNELS=1 turns the selection off. Returns only when no re-execution happened.
namespace kiln::kernels {

void select_blas_kernels(char** argv);

// The kernel family OpenBLAS runs ("SkylakeX", "Haswell", "Prescott", ...).
const char* blas_kernel_name();

// How the loaded OpenBLAS runs threads: "OpenMP" (what kiln links: one pool with kiln's own
// loops), "pthreads" (its own spinning pool) or "sequential".
const char* blas_threading();

}  // namespace kiln::kernels
