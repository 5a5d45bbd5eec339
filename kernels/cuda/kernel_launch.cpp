#include "kernels/cuda/kernel_launch.hpp"

#include <string_view>

#include "trainer/core/error.hpp"

namespace kiln::cuda_launch {

void fail_kernel_launch(const char* kernel, const char* error_name, const char* error_text, const char* detail) {
  const std::string_view why = detail ? detail : "";
  kiln::fail("CUDA kernel {}: launch failed: {} ({}){}{}", kernel, error_name, error_text, why.empty() ? "" : ": ", why);
}

}  // namespace kiln::cuda_launch

namespace kiln::cuda_launch {

void fail_kernel_argument(const char* kernel, const char* problem) { kiln::fail("CUDA kernel {}: {}", kernel, problem); }

}  // namespace kiln::cuda_launch
