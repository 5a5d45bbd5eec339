#include "kernels/cuda/emulation/launch.hpp"

#include <fmt/format.h>

namespace kiln::emu {

LaunchProblem check_launch_shape(const GridShape& shape, std::size_t shared_limit) {
  const dim3 block = shape.block, grid = shape.grid;
  const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 || threads > kMaxThreadsPerBlock)
    return {cudaErrorInvalidConfiguration, fmt::format("kernel {}: block ({},{},{}) has {} threads; sm_90 allows 1 to 1024 per block "
                       "(x, y up to 1024, z up to 64)", shape.kernel, block.x, block.y, block.z, threads)};
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    return {cudaErrorInvalidConfiguration, fmt::format("kernel {}: grid ({},{},{}) is out of range; sm_90 allows x 1 to 2^31-1, y and z 1 to 65535",
                       shape.kernel, grid.x, grid.y, grid.z)};
  if (shape.dynamic_shared_bytes > shared_limit)
    return {cudaErrorInvalidValue, fmt::format("kernel {}: {} bytes of dynamic shared memory asked, the kernel may use {} ({})",
                       shape.kernel, shape.dynamic_shared_bytes, shared_limit,
                       shared_limit < kMaxDynamicSharedBytes
                           ? "raise it with cudaFuncSetAttribute(MaxDynamicSharedMemorySize), at most 227 KiB on sm_90"
                           : "the sm_90 maximum")};
  return {};
}

}  // namespace kiln::emu
