#pragma once
// Which CUDA device this kiln process trains on (kernels/cuda/backend.hpp): registers the
// backends this build has (the GPU with the CUDA toolkit; the emulated device in builds with
// KILN_CUDA_EMULATION) and selects the one `train.device: cuda` / `--device cuda` means.
#include <string>

#include "kernels/cuda/backend.hpp"

namespace kiln::train {

// Throws kiln::Error naming `setting` when that device is not there (no GPU or driver, a
// build without CUDA, a GPU older than sm_80, the emulated device asked of a build without
// it). KILN_CUDA_DEVICE=emulated asks for the emulated device (correct, slow: for tests).
cuda_backend::CudaBackend& select_cuda_device(const std::string& setting);

// Whether `auto` (train.device, --device) may take a GPU: this build has one and it is
// there, usable (then it is also selected). The emulated device is never chosen by auto: it
// is for tests.
bool gpu_is_usable(const std::string& setting);

// One line for `kiln --version`: the CUDA backends this build can select.
std::string cuda_backends_built();

}  // namespace kiln::train
