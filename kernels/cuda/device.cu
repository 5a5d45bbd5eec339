#include <cuda_runtime.h>

#include "kernels/device.hpp"

namespace kiln::kernels {

std::vector<DeviceInfo> cuda_devices(std::string* why_none) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why_none) *why_none = cudaGetErrorString(status);
    return {};
  }
  std::vector<DeviceInfo> devices;
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, index) != cudaSuccess) continue;
    devices.push_back({index, properties.name, properties.major, properties.minor,
                       static_cast<double>(properties.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0)});
  }
  if (devices.empty() && why_none) *why_none = "the CUDA runtime reports no devices";
  return devices;
}

}  // namespace kiln::kernels
