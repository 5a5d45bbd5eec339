#include "kernels/ops/activations.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/gelu.hpp"
#include "kernels/cpu/swiglu.hpp"
#include "kernels/ops/bf16_staging.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

namespace {

// The CUDA SwiGLU kernels read gate and up as the two halves of one [rows, 2F] buffer (the
// fused gate|up GEMM output, as the model lays it out): `first` must be columns [0, F) and
// `second` columns [F, 2F) of the same rows, and `out` [rows, F] contiguous.
Tensor fused_halves(const char* op, const char* first_name, const Tensor& first, const char* second_name,
                    const Tensor& second, const Tensor& out) {
  const std::int64_t F = out.size(-1), rows = out.numel() / std::max<std::int64_t>(F, 1);
  const auto* first_bytes = static_cast<const std::byte*>(first.ptr);
  const bool fused = first.shape == out.shape && second.shape == out.shape && out.is_contiguous() &&
                     first.stride(-1) == 1 && second.stride(-1) == 1 &&
                     (rows <= 1 || (first.rank() >= 2 && first.stride(-2) == 2 * F && second.stride(-2) == 2 * F)) &&
                     static_cast<const std::byte*>(second.ptr) ==
                         first_bytes + static_cast<std::size_t>(F) * first.element_size();
  if (!fused)
    fail("ops::{}: on the CUDA device `{}` {} and `{}` {} must be the two halves of one [rows, 2F] buffer "
         "(narrow(-1, 0, F) and narrow(-1, F, F)) and the output contiguous",
         op, first_name, first.str(), second_name, second.str());
  return Tensor(first.ptr, first.dtype, Shape{rows, 2 * F}, Device::Cuda);
}

}  // namespace

void gelu_forward(Tensor y, Tensor x) {
  constexpr const char* op = "gelu_forward";
  if (on_cuda(op, {{"y", y}, {"x", x}})) {
    require_defined(op, {{"y", y}, {"x", x}});
    check_same_shapes(op, {{"y", y}, {"x", x}});
    check_cuda_storage(op, {{"y", y}, {"x", x}});
    return cuda_backend_for(op).gelu_forward(y, x);
  }
  const Bf16Staging staged(op, {write("y", y), read("x", x)});
  if (staged.active()) {
    gelu_forward(y, x);
    return staged.write_back();
  }
  require_defined(op, {{"y", y}, {"x", x}});
  require_cpu(op, {{"y", y}, {"x", x}});
  const DType dtype = float_dtype(op, {{"y", y}, {"x", x}});
  check_shape(op, "y", y, x.shape);
  dispatch_float(dtype, [&]<class T>(T) {
    const std::int64_t C = x.rank() > 0 ? x.size(-1) : 1;
    const Tensor x2 = x.rank() > 0 ? x : x.reshape({1});
    const Tensor y2 = y.rank() > 0 ? y : y.reshape({1});
    cpu::gelu_forward<T>(rows<T>(op, "y", y2, C), const_rows<T>(op, "x", x2, C));
  });
}

namespace {

// An elementwise op over rows [..., C]: every other argument has the shape of `like`, which
// has at least one dimension (`expected` names its layout). Returns C.
std::int64_t row_length(const char* op, const Arg& like, std::initializer_list<Arg> others, const char* expected) {
  for (const Arg& arg : others) check_shape(op, arg.name, arg.tensor, like.tensor.shape);
  if (like.tensor.rank() == 0) fail("ops::{}: `{}` is {}; expected {}", op, like.name, like.tensor.str(), expected);
  return like.tensor.size(-1);
}

}  // namespace

void gelu_backward(Tensor dx, Tensor dy, Tensor x, Accumulate accumulate_dx) {
  constexpr const char* op = "gelu_backward";
  if (on_cuda(op, {{"dx", dx}, {"dy", dy}, {"x", x}})) {
    require_defined(op, {{"dx", dx}, {"dy", dy}, {"x", x}});
    check_same_shapes(op, {{"x", x}, {"dy", dy}, {"dx", dx}});
    check_cuda_storage(op, {{"dx", dx}, {"dy", dy}, {"x", x}});
    return cuda_backend_for(op).gelu_backward(dx, dy, x, accumulate_dx == Accumulate::Yes);
  }
  const Bf16Staging staged(op, {write_or_add("dx", dx, accumulate_dx), read("dy", dy), read("x", x)});
  if (staged.active()) {
    gelu_backward(dx, dy, x, accumulate_dx);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {{"dx", dx}, {"dy", dy}, {"x", x}};
  const DType dtype = checked_float_inputs(op, all);
  const std::int64_t C = row_length(op, {"x", x}, {{"dy", dy}, {"dx", dx}}, "[..., C]");
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::gelu_backward<T>(rows<T>(op, "dx", dx, C), const_rows<T>(op, "dy", dy, C),
                          const_rows<T>(op, "x", x, C), accumulate_dx == Accumulate::Yes);
  });
}

void swiglu_forward(Tensor out, Tensor gate, Tensor up) {
  constexpr const char* op = "swiglu_forward";
  if (on_cuda(op, {{"out", out}, {"gate", gate}, {"up", up}})) {
    require_defined(op, {{"out", out}, {"gate", gate}, {"up", up}});
    check_cuda_storage(op, {{"out", out}, {"gate", gate}, {"up", up}});
    return cuda_backend_for(op).swiglu_forward(out, fused_halves(op, "gate", gate, "up", up, out));
  }
  const Bf16Staging staged(op, {write("out", out), read("gate", gate), read("up", up)});
  if (staged.active()) {
    swiglu_forward(out, gate, up);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {{"out", out}, {"gate", gate}, {"up", up}};
  const DType dtype = checked_float_inputs(op, all);
  const std::int64_t F = row_length(op, {"gate", gate}, {{"up", up}, {"out", out}}, "[..., F]");
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::swiglu_forward<T>(rows<T>(op, "out", out, F), const_rows<T>(op, "gate", gate, F),
                           const_rows<T>(op, "up", up, F));
  });
}

void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) {
  constexpr const char* op = "swiglu_backward";
  if (on_cuda(op, {{"dgate", dgate}, {"dup", dup}, {"dout", dout}, {"gate", gate}, {"up", up}})) {
    require_defined(op, {{"dgate", dgate}, {"dup", dup}, {"dout", dout}, {"gate", gate}, {"up", up}});
    check_cuda_storage(op, {{"dgate", dgate}, {"dup", dup}, {"dout", dout}, {"gate", gate}, {"up", up}});
    const Tensor gate_up = fused_halves(op, "gate", gate, "up", up, dout);
    return cuda_backend_for(op).swiglu_backward(fused_halves(op, "dgate", dgate, "dup", dup, dout), dout, gate_up);
  }
  const Bf16Staging staged(op, {write("dgate", dgate), write("dup", dup), read("dout", dout), read("gate", gate), read("up", up)});
  if (staged.active()) {
    swiglu_backward(dgate, dup, dout, gate, up);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {
      {"dgate", dgate}, {"dup", dup}, {"dout", dout}, {"gate", gate}, {"up", up}};
  const DType dtype = checked_float_inputs(op, all);
  const std::int64_t F = row_length(op, {"gate", gate},
                                    {{"dgate", dgate}, {"dup", dup}, {"dout", dout}, {"up", up}}, "[..., F]");
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::swiglu_backward<T>(rows<T>(op, "dgate", dgate, F), rows<T>(op, "dup", dup, F),
                            const_rows<T>(op, "dout", dout, F), const_rows<T>(op, "gate", gate, F),
                            const_rows<T>(op, "up", up, F));
  });
}

}  // namespace kiln::ops
