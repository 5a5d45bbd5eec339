#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cudnn_sdpa.hpp"
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

std::string cuda_library_versions() {
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);  // 12080 -> 12.8
  const std::size_t blas = cublasLtGetVersion();  // 120804 -> 12.8.4
  return "CUDA runtime " + std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10) + ", cuBLASLt " +
         std::to_string(blas / 10000) + "." + std::to_string(blas % 10000 / 100) + "." + std::to_string(blas % 100) +
         ", cuDNN " + cudnn_sdpa::library_version() + ", " + nccl_version();
}

}  // namespace kiln::kernels
