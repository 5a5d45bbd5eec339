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

namespace {

struct MatmulShape {
  std::int64_t m, n, k;
};

// c [M, N] = op(a) [M, K] op(b) [K, N]: all three defined, 2-D, and chaining.
MatmulShape check_matmul_shapes(const char* op, const Tensor& c, const Tensor& a, const Tensor& b, bool transpose_a,
                                bool transpose_b) {
  require_defined(op, {{"c", c}, {"a", a}, {"b", b}});
  for (const Arg& arg : {Arg{"c", c}, Arg{"a", a}, Arg{"b", b}})
    if (arg.tensor.rank() != 2) fail("ops::{}: `{}` is {}; expected 2-D", op, arg.name, arg.tensor.str());
  const std::int64_t m = transpose_a ? a.size(1) : a.size(0);
  const std::int64_t k = transpose_a ? a.size(0) : a.size(1);
  const std::int64_t k_b = transpose_b ? b.size(1) : b.size(0);
  const std::int64_t n = transpose_b ? b.size(0) : b.size(1);
  if (k != k_b || c.size(0) != m || c.size(1) != n)
    fail("ops::{}: c {} = op(a {}{}) op(b {}{}): shapes do not chain", op, c.str(), a.str(),
         transpose_a ? "^T" : "", b.str(), transpose_b ? "^T" : "");
  return {m, n, k};
}

// w [out, in], contiguous: the weight of a linear layer.
void check_linear_weight(const char* op, const Tensor& w) {
  if (w.rank() != 2) fail("ops::{}: `w` is {}; expected [out, in]", op, w.str());
  check_contiguous(op, "w", w);
}

// ---- the CUDA side: every product is one GEMM (kernels/cuda/gemm.hpp) ----------------------

// y [R, out] = x [R, in] w^T (+ b, fused into the GEMM's epilogue).
void cuda_linear_forward(Tensor y, Tensor x, Tensor w, Tensor b) {
  constexpr const char* op = "linear_forward";
  require_defined(op, {{"y", y}, {"x", x}, {"w", w}});
  check_linear_weight(op, w);
  const std::int64_t out = w.size(0), in = w.size(1);
  const auto yr = row_matrix(op, "y", y, out), xr = row_matrix(op, "x", x, in);
  check_rows_match(op, "x", x, xr.rows, "y", y, yr.rows);
  check_vector(op, "b", b, out);
  if (b.defined() && b.dtype != y.dtype)
    fail("ops::{}: `b` is {} but `y` is {}; the fused bias has the output's dtype", op, b.str(), y.str());
  cuda_backend_for(op).matmul(yr, xr, row_matrix(op, "w", w, in), false, true, 1.0, 0.0, b.defined() ? b.ptr : nullptr);
}

// dx [R, in] (+)= dy [R, out] w;  dw [out, in] += dy^T x;  db [out] += the column sums of dy.
void cuda_linear_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Accumulate accumulate_dx) {
  constexpr const char* op = "linear_backward";
  require_defined(op, {{"dy", dy}, {"x", x}, {"w", w}});
  check_linear_weight(op, w);
  const std::int64_t out = w.size(0), in = w.size(1);
  const auto dyr = row_matrix(op, "dy", dy, out), xr = row_matrix(op, "x", x, in);
  check_rows_match(op, "dy", dy, dyr.rows, "x", x, xr.rows);
  auto& backend = cuda_backend_for(op);
  if (dx.defined()) {
    const auto dxr = row_matrix(op, "dx", dx, in);
    check_rows_match(op, "dy", dy, dyr.rows, "dx", dx, dxr.rows);
    backend.matmul(dxr, dyr, row_matrix(op, "w", w, in), false, false, 1.0,
                   accumulate_dx == Accumulate::Yes ? 1.0 : 0.0, nullptr);
  }
  if (dw.defined()) {
    check_shape(op, "dw", dw, w.shape);
    check_contiguous(op, "dw", dw);
    backend.matmul(row_matrix(op, "dw", dw, in), dyr, xr, true, false, 1.0, 1.0, nullptr);
  }
  if (db.defined()) {
    check_vector(op, "db", db, out);
    backend.add_column_sums(db, dyr);
  }
}

}  // namespace

void linear_forward(Tensor y, Tensor x, Tensor w, Tensor b) {
  constexpr const char* op = "linear_forward";
  if (on_cuda(op, {{"y", y}, {"x", x}, {"w", w}, {"b", b}})) return cuda_linear_forward(y, x, w, b);
  const Bf16Staging staged(op, {write("y", y), read("x", x), read("w", w), read("b", b)});
  if (staged.active()) {
    linear_forward(y, x, w, b);
    return staged.write_back();
  }
  require_defined(op, {{"y", y}, {"x", x}, {"w", w}});
  require_cpu(op, {{"y", y}, {"x", x}, {"w", w}, {"b", b}});
  const DType dtype = float_dtype(op, {{"y", y}, {"x", x}, {"w", w}, {"b", b}});
  check_linear_weight(op, w);
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
  if (on_cuda(op, {{"dx", dx}, {"dw", dw}, {"db", db}, {"dy", dy}, {"x", x}, {"w", w}}))
    return cuda_linear_backward(dx, dw, db, dy, x, w, accumulate_dx);
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
  check_linear_weight(op, w);
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
  if (on_cuda(op, {{"c", c}, {"a", a}, {"b", b}})) {
    check_matmul_shapes(op, c, a, b, transpose_a, transpose_b);
    return cuda_backend_for(op).matmul(row_matrix(op, "c", c, c.size(1)), row_matrix(op, "a", a, a.size(1)),
                                       row_matrix(op, "b", b, b.size(1)), transpose_a, transpose_b, alpha, beta,
                                       nullptr);
  }
  const Bf16Staging staged(op, {beta == 0.0 ? write("c", c) : read_write("c", c), read("a", a), read("b", b)});
  if (staged.active()) {
    matmul(c, a, b, transpose_a, transpose_b, alpha, beta);
    return staged.write_back();
  }
  require_cpu(op, {{"c", c}, {"a", a}, {"b", b}});
  const DType dtype = float_dtype(op, {{"c", c}, {"a", a}, {"b", b}});
  const auto [m, n, k] = check_matmul_shapes(op, c, a, b, transpose_a, transpose_b);
  dispatch_float(dtype, [&]<class T>(T) {
    const auto ar = const_rows<T>(op, "a", a, a.size(1));
    const auto br = const_rows<T>(op, "b", b, b.size(1));
    const auto cr = rows<T>(op, "c", c, n);
    cpu::gemm<T>(transpose_a, transpose_b, m, n, k, static_cast<T>(alpha), ar.data, ar.stride,
                 br.data, br.stride, static_cast<T>(beta), cr.data, cr.stride);
  });
}

}  // namespace kiln::ops
