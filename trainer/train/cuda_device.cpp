#include "trainer/train/cuda_device.hpp"

#include <mutex>

#include "kernels/cuda/backend_registry.hpp"
#include "trainer/core/error.hpp"

namespace kiln::train {

namespace {

void register_built_backends() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(KILN_WITH_CUDA)
    kiln::cuda::register_gpu_backend();
#endif
#if defined(KILN_WITH_CUDA_EMULATION)
    kiln::cuda_emu::register_emulated_backend();
#endif
  });
}

}  // namespace

cuda_backend::CudaBackend& select_cuda_device(const std::string& setting) {
  register_built_backends();
  cuda_backend::select_cuda_backend(cuda_backend::requested_backend_kind(), setting);
  return cuda_backend::active_backend(setting.c_str());
}

bool gpu_is_usable(const std::string& setting) {
  if (cuda_backend::requested_backend_kind() != cuda_backend::BackendKind::Gpu) return false;
  try {
    select_cuda_device(setting);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::string cuda_backends_built() {
  std::string built;
#if defined(KILN_WITH_CUDA)
  built = "GPU (sm_90 kernels)";
#endif
#if defined(KILN_WITH_CUDA_EMULATION)
  built += built.empty() ? "" : ", ";
  built += "emulated device (tests: KILN_CUDA_DEVICE=emulated)";
#endif
  return built.empty() ? "none" : built;
}

}  // namespace kiln::train
