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

void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWStep& step,
                bool apply_weight_decay) {
  constexpr const char* op = "adamw_step";
  const std::initializer_list<Arg> all = {{"param", param}, {"grad", grad}, {"m", m}, {"v", v}};
  const DType dtype = checked_float_inputs(op, all);
  for (const Arg& arg : all) {
    check_shape(op, arg.name, arg.tensor, param.shape);
    check_contiguous(op, arg.name, arg.tensor);
  }
  if (step.step < 1) fail("ops::{}: step {} must be >= 1 (bias correction)", op, step.step);
  const auto t = static_cast<double>(step.step);
  const cpu::AdamWScalars scalars{step.lr,
                                  step.beta1,
                                  step.beta2,
                                  step.eps,
                                  apply_weight_decay ? step.weight_decay : 0.0,
                                  step.lr / (1.0 - std::pow(step.beta1, t)),
                                  std::sqrt(1.0 - std::pow(step.beta2, t)),
                                  step.grad_scale};
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::adamw_step<T>(pointer<T>(param), pointer<T>(grad), pointer<T>(m), pointer<T>(v),
                       param.numel(), scalars);
  });
}

double sum_of_squares(Tensor x) {
  constexpr const char* op = "sum_of_squares";
  require_defined(op, {{"x", x}});
  require_cpu(op, {{"x", x}});
  const DType dtype = float_dtype(op, {{"x", x}});
  check_contiguous(op, "x", x);
  double total = 0;
  dispatch_float(dtype,
                 [&]<class T>(T) { total = cpu::sum_of_squares<T>(pointer<T>(x), x.numel()); });
  return total;
}

}  // namespace kiln::ops
