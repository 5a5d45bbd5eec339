// Built only without the CUDA backend; kernels/cuda/device.cu replaces it otherwise.
#include "kernels/device.hpp"

namespace kiln::kernels {

std::vector<DeviceInfo> cuda_devices(std::string* why_none) {
  if (why_none) *why_none = "kiln was built without CUDA (KILN_CUDA=OFF or no nvcc)";
  return {};
}

std::string cuda_library_versions() { return "none"; }

}  // namespace kiln::kernels
