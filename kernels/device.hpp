#pragma once
// Which accelerators this process can see. Built without CUDA, the list is always empty.
#include <string>
#include <vector>

namespace kiln::kernels {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  double memory_gib = 0;
};

// Never throws: a machine without a driver or a GPU simply has no devices. When the CUDA
// runtime reports why, `why_none` receives its message.
std::vector<DeviceInfo> cuda_devices(std::string* why_none = nullptr);

// The CUDA libraries this build runs on, for `kiln --version`: "CUDA runtime 12.8, cuBLASLt
// 12.8.4, cuDNN 9.19.0, NCCL 2.28.9" (cuDNN: the loaded libcudnn, or why it is not available for
// train.attention: cudnn); "none" in a build without CUDA.
std::string cuda_library_versions();
// "NCCL 2.28.9", or "NCCL not built" (CUDA builds only: kernels/cuda/host/collectives_ops.cpp).
std::string nccl_version();

}  // namespace kiln::kernels
