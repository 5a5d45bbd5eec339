#include "kernels/ops/matmul.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/matmul.hpp"
#include "kernels/ops/bf16_staging.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

void linear_forward(Tensor y, Tensor x, Tensor w, Tensor b) {
  constexpr const char* op = "linear_forward";
  const Bf16Staging staged(op, {write("y", y), read("x", x), read("w", w), read("b", b)});
  if (staged.active()) {
    linear_forward(y, x, w, b);
    return staged.write_back();
  }
  require_defined(op, {{"y", y}, {"x", x}, {"w", w}});
  require_cpu(op, {{"y", y}, {"x", x}, {"w", w}, {"b", b}});
  const DType dtype = float_dtype(op, {{"y", y}, {"x", x}, {"w", w}, {"b", b}});
  if (w.rank() != 2) fail("ops::{}: `w` is {}; expected [out, in]", op, w.str());
  check_contiguous(op, "w", w);
  const std::int64_t out = w.size(0), in = w.size(1);
  dispatch_float(dtype, [&]<class T>(T) {
    const auto xr = const_rows<T>(op, "x", x, in);
    const auto yr = rows<T>(op, "y", y, out);
    check_rows_match(op, "x", x, xr.rows, "y", y, yr.rows);
    cpu::linear_forward<T>(yr, xr, pointer<T>(w), vector_of<T>(op, "b", b, out));
  });
}

void linear_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                     Accumulate accumulate_dx) {
  constexpr const char* op = "linear_backward";
  const Bf16Staging staged(op, {write_or_add("dx", dx, accumulate_dx), f32_gradient("dw", dw),
                                f32_gradient("db", db), read("dy", dy), read("x", x), read("w", w)});
  if (staged.active()) {
    linear_backward(dx, dw, db, dy, x, w, accumulate_dx);
    return staged.write_back();
  }
  require_defined(op, {{"dy", dy}, {"x", x}, {"w", w}});
  const std::initializer_list<Arg> all = {{"dx", dx}, {"dw", dw}, {"db", db},
                                          {"dy", dy}, {"x", x},   {"w", w}};
  require_cpu(op, all);
  const DType dtype = float_dtype(op, all);
  if (w.rank() != 2) fail("ops::{}: `w` is {}; expected [out, in]", op, w.str());
  check_contiguous(op, "w", w);
  const std::int64_t out = w.size(0), in = w.size(1);
  if (dw.defined()) {
    check_shape(op, "dw", dw, w.shape);
    check_contiguous(op, "dw", dw);
  }
  dispatch_float(dtype, [&]<class T>(T) {
    const auto dyr = const_rows<T>(op, "dy", dy, out);
    const auto xr = const_rows<T>(op, "x", x, in);
    const auto dxr = optional_rows<T>(op, "dx", dx, in);
    check_rows_match(op, "dy", dy, dyr.rows, "x", x, xr.rows);
    if (dxr.defined()) check_rows_match(op, "dy", dy, dyr.rows, "dx", dx, dxr.rows);
    cpu::linear_backward<T>(dxr, dw.defined() ? pointer<T>(dw) : nullptr,
                            vector_of<T>(op, "db", db, out), dyr, xr, pointer<T>(w),
                            accumulate_dx == Accumulate::Yes);
  });
}

void matmul(Tensor c, Tensor a, Tensor b, bool transpose_a, bool transpose_b, double alpha,
            double beta) {
  constexpr const char* op = "matmul";
  const Bf16Staging staged(op, {beta == 0.0 ? write("c", c) : read_write("c", c), read("a", a), read("b", b)});
  if (staged.active()) {
    matmul(c, a, b, transpose_a, transpose_b, alpha, beta);
    return staged.write_back();
  }
  require_defined(op, {{"c", c}, {"a", a}, {"b", b}});
  require_cpu(op, {{"c", c}, {"a", a}, {"b", b}});
  const DType dtype = float_dtype(op, {{"c", c}, {"a", a}, {"b", b}});
  for (const Arg& arg : {Arg{"c", c}, Arg{"a", a}, Arg{"b", b}})
    if (arg.tensor.rank() != 2)
      fail("ops::{}: `{}` is {}; expected 2-D", op, arg.name, arg.tensor.str());
  const std::int64_t m = transpose_a ? a.size(1) : a.size(0);
  const std::int64_t k = transpose_a ? a.size(0) : a.size(1);
  const std::int64_t k_b = transpose_b ? b.size(1) : b.size(0);
  const std::int64_t n = transpose_b ? b.size(0) : b.size(1);
  if (k != k_b || c.size(0) != m || c.size(1) != n)
    fail("ops::{}: c {} = op(a {}{}) op(b {}{}): shapes do not chain", op, c.str(), a.str(),
         transpose_a ? "^T" : "", b.str(), transpose_b ? "^T" : "");
  dispatch_float(dtype, [&]<class T>(T) {
    const auto ar = const_rows<T>(op, "a", a, a.size(1));
    const auto br = const_rows<T>(op, "b", b, b.size(1));
    const auto cr = rows<T>(op, "c", c, n);
    cpu::gemm<T>(transpose_a, transpose_b, m, n, k, static_cast<T>(alpha), ar.data, ar.stride,
                 br.data, br.stride, static_cast<T>(beta), cr.data, cr.stride);
  });
}

}  // namespace kiln::ops
