// CUDA backend: the global gradient sum of squares (kernels/cuda/adamw.cu).
#include <vector>

#include "kernels/cuda/adamw.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"

namespace kiln::KILN_CUDA_NS {

void DeviceBackend::sum_of_squares(Tensor total, Tensor x, const std::int64_t* range_offsets,
                                   const std::int64_t* range_lengths, int range_count) {
  constexpr const char* op = "sum_of_squares";
  require_contiguous(op, "x", x);
  if (x.dtype != DType::F32) fail("ops::{}: `x` is {}; on the CUDA device gradients are f32", op, x.str());
  if (total.dtype != DType::F64) fail("ops::{}: `total` is {}; expected f64 [1]", op, total.str());
  std::vector<DeviceFlatRange> ranges;
  if (range_count == 0) {
    ranges.push_back({0, x.numel()});
  } else {
    for (int i = 0; i < range_count; ++i) ranges.push_back({range_offsets[i], range_lengths[i]});
  }
  // Workspace: the f64 partials, then the non-finite flag the kernel also produces.
  auto* partials = static_cast<double*>(workspace(kSumOfSquaresPartials * sizeof(double) + sizeof(std::int32_t)));
  auto* non_finite = reinterpret_cast<std::int32_t*>(partials + kSumOfSquaresPartials);
  const void* table = stage_table(ranges.data(), ranges.size() * sizeof(DeviceFlatRange));
  KILN_CUDA_NS::sum_of_squares(device_pointer<double>(total), non_finite, device_pointer<const float>(x),
                               static_cast<const DeviceFlatRange*>(table), static_cast<int>(ranges.size()), partials,
                               compute_);
}

}  // namespace kiln::KILN_CUDA_NS
