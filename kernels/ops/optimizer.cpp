#include "kernels/ops/optimizer.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/cpu/adamw.hpp"
#include "kernels/cpu/bf16.hpp"
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

// The optimizer's tensors: f32 or f64, never bf16 (mixed precision keeps masters, moments and
// the gradients they are updated from in f32; the bf16 weights are the working copy).
DType optimizer_dtype(const char* op, std::initializer_list<Arg> state) {
  require_defined(op, state);
  require_cpu(op, state);
  for (const Arg& arg : state)
    if (arg.tensor.dtype == DType::BF16)
      fail("ops::{}: `{}` is {}; AdamW keeps gradients, master weights and moments in f32 (pass the "
           "bf16 weights as `working_copy`)",
           op, arg.name, arg.tensor.str());
  return float_dtype(op, state);
}

// The bf16 working copy of `params`, or nullptr when none is given.
std::uint16_t* working_copy_of(const char* op, const Tensor& working_copy, const Tensor& params, DType dtype) {
  if (!working_copy.defined()) return nullptr;
  require_cpu(op, {{"working_copy", working_copy}});
  if (working_copy.dtype != DType::BF16)
    fail("ops::{}: `working_copy` is {}; expected bf16 (the working weights of the f32 masters)", op,
         working_copy.str());
  if (dtype != DType::F32)
    fail("ops::{}: `working_copy` needs f32 master weights, but `params` is {}", op, params.str());
  check_shape(op, "working_copy", working_copy, params.shape);
  check_contiguous(op, "working_copy", working_copy);
  return static_cast<std::uint16_t*>(working_copy.ptr);
}

// One contiguous run of elements, with or without the bf16 copy.
template <class T>
void adamw_run(T* p, const T* g, T* m, T* v, std::uint16_t* copy, std::int64_t n, const cpu::AdamWScalars& s) {
  if constexpr (std::is_same_v<T, float>) {
    if (copy != nullptr) return cpu::adamw_step_with_bf16_copy(p, g, m, v, copy, n, s);
  }
  cpu::adamw_step<T>(p, g, m, v, n, s);
}

}  // namespace

void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWStep& step,
                bool apply_weight_decay, Tensor working_copy) {
  constexpr const char* op = "adamw_step";
  const std::initializer_list<Arg> all = {{"param", param}, {"grad", grad}, {"m", m}, {"v", v}};
  const DType dtype = optimizer_dtype(op, all);
  for (const Arg& arg : all) {
    check_shape(op, arg.name, arg.tensor, param.shape);
    check_contiguous(op, arg.name, arg.tensor);
  }
  std::uint16_t* const copy = working_copy_of(op, working_copy, param, dtype);
  const cpu::AdamWScalars scalars = adamw_scalars(op, step, apply_weight_decay);
  dispatch_float(dtype, [&]<class T>(T) {
    adamw_run<T>(pointer<T>(param), pointer<T>(grad), pointer<T>(m), pointer<T>(v), copy, param.numel(), scalars);
  });
}


namespace {

// The CUDA side of adamw_step_segments: the same checks (f32 state, flat buffers, segments
// inside them), then one launch over every segment.
void adamw_segments_on_cuda(Tensor params, Tensor grads, Tensor m, Tensor v, std::span<const AdamWSegment> segments,
                            const AdamWStep& step, Tensor working_copy) {
  constexpr const char* op = "adamw_step_segments";
  const std::initializer_list<Arg> all = {{"params", params}, {"grads", grads}, {"m", m}, {"v", v}};
  require_defined(op, all);
  for (const Arg& arg : all) {
    if (arg.tensor.dtype != DType::F32)
      fail("ops::{}: `{}` is {}; on the CUDA device AdamW keeps f32 state (bf16 weights go in `working_copy`)", op,
           arg.name, arg.tensor.str());
    check_flat(op, arg.name, arg.tensor);
  }
  for (const Arg& arg : {Arg{"m", m}, Arg{"v", v}}) check_shape(op, arg.name, arg.tensor, grads.shape);
  if (working_copy.defined()) {
    check_shape(op, "working_copy", working_copy, params.shape);
    check_contiguous(op, "working_copy", working_copy);
  }
  std::vector<cuda_backend::CudaBackend::AdamWSegmentView> views;
  for (std::size_t k = 0; k < segments.size(); ++k) {
    check_range(op, "params", params, segments[k].param_offset, segments[k].length, k);
    check_range(op, "grads", grads, segments[k].state_offset, segments[k].length, k);
    views.push_back({segments[k].param_offset, segments[k].state_offset, segments[k].length, segments[k].weight_decay});
  }
  adamw_scalars(op, step, true);  // the hyper-parameter checks of the CPU path
  const cuda_backend::CudaBackend::AdamWHyperView hyper{step.lr,  step.beta1, step.beta2,     step.eps,
                                                        step.weight_decay, step.step, step.grad_scale};
  cuda_backend_for(op).adamw_step_segments(params, grads, m, v, views.data(), static_cast<int>(views.size()), hyper,
                                           working_copy);
}

}  // namespace

void adamw_step_segments(Tensor params, Tensor grads, Tensor m, Tensor v, std::span<const AdamWSegment> segments,
                         const AdamWStep& step, Tensor working_copy) {
  constexpr const char* op = "adamw_step_segments";
  const std::initializer_list<Arg> all = {{"params", params}, {"grads", grads}, {"m", m}, {"v", v}};
  if (on_cuda(op, {{"params", params}, {"grads", grads}, {"m", m}, {"v", v}, {"working_copy", working_copy}}))
    return adamw_segments_on_cuda(params, grads, m, v, segments, step, working_copy);
  const DType dtype = optimizer_dtype(op, all);
  for (const Arg& arg : all) check_flat(op, arg.name, arg.tensor);
  for (const Arg& arg : {Arg{"m", m}, Arg{"v", v}}) check_shape(op, arg.name, arg.tensor, grads.shape);
  for (std::size_t k = 0; k < segments.size(); ++k) {
    check_range(op, "params", params, segments[k].param_offset, segments[k].length, k);
    check_range(op, "grads", grads, segments[k].state_offset, segments[k].length, k);
  }
  std::uint16_t* const copy = working_copy_of(op, working_copy, params, dtype);
  const cpu::AdamWScalars with_decay = adamw_scalars(op, step, true);
  const cpu::AdamWScalars without_decay = adamw_scalars(op, step, false);
  dispatch_float(dtype, [&]<class T>(T) {
    for (const AdamWSegment& segment : segments) {
      const std::int64_t at = segment.state_offset;
      adamw_run<T>(pointer<T>(params) + segment.param_offset, pointer<T>(grads) + at, pointer<T>(m) + at,
                   pointer<T>(v) + at, copy ? copy + segment.param_offset : nullptr, segment.length,
                   segment.weight_decay ? with_decay : without_decay);
    }
  });
}

void sum_of_squares(Tensor total, Tensor x, std::span<const FlatRange> ranges) {
  constexpr const char* op = "sum_of_squares";
  require_defined(op, {{"total", total}, {"x", x}});
  const bool cuda = on_cuda(op, {{"total", total}, {"x", x}});
  if (total.dtype != DType::F64 || total.numel() != 1)
    fail("ops::{}: `total` is {}; expected one f64 element", op, total.str());
  if (cuda) {
    check_contiguous(op, "x", x);
    std::vector<std::int64_t> offsets, lengths;
    for (std::size_t k = 0; k < ranges.size(); ++k) {
      check_range(op, "x", x, ranges[k].offset, ranges[k].length, k);
      offsets.push_back(ranges[k].offset);
      lengths.push_back(ranges[k].length);
    }
    return cuda_backend_for(op).sum_of_squares(total, x, offsets.data(), lengths.data(),
                                               static_cast<int>(ranges.size()));
  }
  const DType dtype = x.dtype == DType::BF16 ? DType::BF16 : float_dtype(op, {{"x", x}});
  check_contiguous(op, "x", x);
  for (std::size_t k = 0; k < ranges.size(); ++k) check_range(op, "x", x, ranges[k].offset, ranges[k].length, k);
  double sum = 0;
  if (dtype == DType::BF16) {
    const auto* bits = static_cast<const std::uint16_t*>(x.ptr);
    if (ranges.empty()) sum = cpu::sum_of_squares_bf16(bits, x.numel());
    for (const FlatRange& range : ranges) sum += cpu::sum_of_squares_bf16(bits + range.offset, range.length);
    *total.data<double>() = sum;
    return;
  }
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
