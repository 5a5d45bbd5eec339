#include "kernels/ops/optimizer.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/adamw.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

namespace {

cpu::AdamWScalars adamw_scalars(const char* op, const AdamWStep& step, bool apply_weight_decay) {
  if (step.step < 1) fail("ops::{}: step {} must be >= 1 (bias correction)", op, step.step);
  const auto t = static_cast<double>(step.step);
  return {step.lr,
          step.beta1,
          step.beta2,
          step.eps,
          apply_weight_decay ? step.weight_decay : 0.0,
          step.lr / (1.0 - std::pow(step.beta1, t)),
          std::sqrt(1.0 - std::pow(step.beta2, t)),
          step.grad_scale};
}

void check_flat(const char* op, const char* name, const Tensor& tensor) {
  if (tensor.rank() != 1) fail("ops::{}: `{}` is {}; expected a flat [N] buffer", op, name, tensor.str());
  check_contiguous(op, name, tensor);
}

void check_range(const char* op, const char* name, const Tensor& tensor, std::int64_t offset, std::int64_t length,
                 std::size_t index) {
  if (offset < 0 || length < 0 || offset + length > tensor.numel())
    fail("ops::{}: range {} [{}, {}) lies outside `{}` {}", op, index, offset, offset + length, name, tensor.str());
}

}  // namespace

void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWStep& step,
                bool apply_weight_decay) {
  constexpr const char* op = "adamw_step";
  const std::initializer_list<Arg> all = {{"param", param}, {"grad", grad}, {"m", m}, {"v", v}};
  const DType dtype = checked_float_inputs(op, all);
  for (const Arg& arg : all) {
    check_shape(op, arg.name, arg.tensor, param.shape);
    check_contiguous(op, arg.name, arg.tensor);
  }
  const cpu::AdamWScalars scalars = adamw_scalars(op, step, apply_weight_decay);
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::adamw_step<T>(pointer<T>(param), pointer<T>(grad), pointer<T>(m), pointer<T>(v),
                       param.numel(), scalars);
  });
}


void adamw_step_segments(Tensor params, Tensor grads, Tensor m, Tensor v, std::span<const AdamWSegment> segments,
                         const AdamWStep& step) {
  constexpr const char* op = "adamw_step_segments";
  const std::initializer_list<Arg> all = {{"params", params}, {"grads", grads}, {"m", m}, {"v", v}};
  const DType dtype = checked_float_inputs(op, all);
  for (const Arg& arg : all) check_flat(op, arg.name, arg.tensor);
  for (const Arg& arg : {Arg{"m", m}, Arg{"v", v}}) check_shape(op, arg.name, arg.tensor, grads.shape);
  for (std::size_t k = 0; k < segments.size(); ++k) {
    check_range(op, "params", params, segments[k].param_offset, segments[k].length, k);
    check_range(op, "grads", grads, segments[k].state_offset, segments[k].length, k);
  }
  const cpu::AdamWScalars with_decay = adamw_scalars(op, step, true);
  const cpu::AdamWScalars without_decay = adamw_scalars(op, step, false);
  dispatch_float(dtype, [&]<class T>(T) {
    for (const AdamWSegment& segment : segments) {
      const std::int64_t at = segment.state_offset;
      cpu::adamw_step<T>(pointer<T>(params) + segment.param_offset, pointer<T>(grads) + at, pointer<T>(m) + at,
                         pointer<T>(v) + at, segment.length, segment.weight_decay ? with_decay : without_decay);
    }
  });
}

void sum_of_squares(Tensor total, Tensor x, std::span<const FlatRange> ranges) {
  constexpr const char* op = "sum_of_squares";
  require_defined(op, {{"total", total}, {"x", x}});
  require_cpu(op, {{"total", total}, {"x", x}});
  if (total.dtype != DType::F64 || total.numel() != 1)
    fail("ops::{}: `total` is {}; expected one f64 element", op, total.str());
  const DType dtype = float_dtype(op, {{"x", x}});
  check_contiguous(op, "x", x);
  for (std::size_t k = 0; k < ranges.size(); ++k) check_range(op, "x", x, ranges[k].offset, ranges[k].length, k);
  double sum = 0;
  dispatch_float(dtype, [&]<class T>(T) {
    if (ranges.empty()) {
      sum = cpu::sum_of_squares<T>(pointer<T>(x), x.numel());
      return;
    }
    for (const FlatRange& range : ranges) sum += cpu::sum_of_squares<T>(pointer<T>(x) + range.offset, range.length);
  });
  *total.data<double>() = sum;
}

}  // namespace kiln::ops
