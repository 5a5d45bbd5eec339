// CUDA backend: multi-tensor AdamW and the global gradient sum of squares (kernels/cuda/adamw.cu).
#include <vector>

#include "kernels/cuda/adamw.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"

namespace kiln::KILN_CUDA_NS {

void DeviceBackend::adamw_step_segments(Tensor params, Tensor grads, Tensor m, Tensor v,
                                        const AdamWSegmentView* segments, int count, const AdamWHyperView& hyper,
                                        Tensor working_copy) {
  constexpr const char* op = "adamw_step_segments";
  std::vector<AdamWDeviceSegment> table;
  for (int k = 0; k < count; ++k)
    table.push_back({segments[k].param_offset, segments[k].state_offset, segments[k].length,
                     segments[k].weight_decay ? 1 : 0, 0});
  validate_adamw_segments(table.data(), count, params.numel(), grads.numel());
  const auto* device_table =
      static_cast<const AdamWDeviceSegment*>(stage_table(table.data(), table.size() * sizeof(AdamWDeviceSegment)));
  const AdamWHyper step{hyper.lr, hyper.beta1, hyper.beta2, hyper.eps, hyper.weight_decay, hyper.step, hyper.grad_scale};
  float* master = f32_pointer(op, "params", params);
  const float* g = f32_pointer(op, "grads", grads);
  if (working_copy.defined()) {
    if (working_copy.dtype != DType::BF16) fail("ops::{}: `working_copy` is {}; expected bf16", op, working_copy.str());
    KILN_CUDA_NS::adamw_step_segments(master, device_pointer<__nv_bfloat16>(working_copy), g,
                                      f32_pointer(op, "m", m), f32_pointer(op, "v", v), device_table, count, step,
                                      compute_);
  } else {
    KILN_CUDA_NS::adamw_step_segments(master, static_cast<float*>(nullptr), g, f32_pointer(op, "m", m),
                                      f32_pointer(op, "v", v), device_table, count, step, compute_);
  }
}

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
