#include "kernels/ops/norms.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/layernorm.hpp"
#include "kernels/cpu/rmsnorm.hpp"
#include "kernels/ops/bf16_staging.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

namespace {

// The [N, C] rows a norm's backward reads and writes: x, dy, and dx when it is wanted,
// checked to have the same number of rows.
template <class T>
struct NormBackwardRows {
  cpu::RowView<const T> x, dy;
  cpu::RowView<T> dx;
};

template <class T>
NormBackwardRows<T> norm_backward_rows(const char* op, const Tensor& dx, const Tensor& dy, const Tensor& x,
                                       std::int64_t C) {
  NormBackwardRows<T> r{const_rows<T>(op, "x", x, C), const_rows<T>(op, "dy", dy, C), optional_rows<T>(op, "dx", dx, C)};
  check_rows_match(op, "x", x, r.x.rows, "dy", dy, r.dy.rows);
  if (r.dx.defined()) check_rows_match(op, "x", x, r.x.rows, "dx", dx, r.dx.rows);
  return r;
}

}  // namespace

void layernorm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b,
                       double eps) {
  constexpr const char* op = "layernorm_forward";
  if (on_cuda(op, {{"y", y}, {"mean", mean}, {"rstd", rstd}, {"x", x}, {"w", w}, {"b", b}})) {
    require_defined(op, {{"y", y}, {"x", x}, {"w", w}});
    check_same_shapes(op, {{"x", x}, {"y", y}});
    check_cuda_storage(op, {{"y", y}, {"x", x}, {"w", w}, {"b", b}});
    const std::int64_t C = x.size(-1), rows = x.numel() / std::max<std::int64_t>(C, 1);
    for (const Arg& v : {Arg{"w", w}, Arg{"b", b}}) check_vector(op, v.name, v.tensor, C);
    for (const Arg& v : {Arg{"mean", mean}, Arg{"rstd", rstd}}) check_vector(op, v.name, v.tensor, rows);
    return cuda_backend_for(op).layernorm_forward(y, mean, rstd, x, w, b, eps);
  }
  const Bf16Staging staged(op, {write("y", y), write("mean", mean), write("rstd", rstd), read("x", x),
                                read("w", w), read("b", b)});
  if (staged.active()) {
    layernorm_forward(y, mean, rstd, x, w, b, eps);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {{"y", y}, {"mean", mean}, {"rstd", rstd},
                                          {"x", x}, {"w", w},       {"b", b}};
  const DType dtype = checked_float_inputs(op, all);
  const std::int64_t C = x.rank() > 0 ? x.size(-1) : 0;
  dispatch_float(dtype, [&]<class T>(T) {
    const auto xr = const_rows<T>(op, "x", x, C);
    const auto yr = rows<T>(op, "y", y, C);
    check_rows_match(op, "x", x, xr.rows, "y", y, yr.rows);
    cpu::layernorm_forward<T>(yr, vector_of<T>(op, "mean", mean, xr.rows),
                              vector_of<T>(op, "rstd", rstd, xr.rows), xr,
                              vector_of<T>(op, "w", w, C), vector_of<T>(op, "b", b, C), eps);
  });
}

void layernorm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Tensor mean,
                        Tensor rstd, Accumulate accumulate_dx) {
  constexpr const char* op = "layernorm_backward";
  if (on_cuda(op, {{"dx", dx}, {"dw", dw}, {"db", db}, {"dy", dy}, {"x", x}, {"w", w}, {"mean", mean},
                   {"rstd", rstd}})) {
    require_defined(op, {{"dy", dy}, {"x", x}, {"w", w}, {"mean", mean}, {"rstd", rstd}});
    check_same_shapes(op, {{"x", x}, {"dy", dy}, {"dx", dx}});
    check_cuda_storage(op, {{"dx", dx}, {"dy", dy}, {"x", x}, {"w", w}});
    const std::int64_t C = x.size(-1), rows = x.numel() / std::max<std::int64_t>(C, 1);
    for (const Arg& v : {Arg{"w", w}, Arg{"dw", dw}, Arg{"db", db}}) check_vector(op, v.name, v.tensor, C);
    for (const Arg& v : {Arg{"mean", mean}, Arg{"rstd", rstd}}) check_vector(op, v.name, v.tensor, rows);
    return cuda_backend_for(op).layernorm_backward(dx, dw, db, dy, x, w, mean, rstd,
                                                   accumulate_dx == Accumulate::Yes);
  }
  const Bf16Staging staged(op, {write_or_add("dx", dx, accumulate_dx), f32_gradient("dw", dw),
                                f32_gradient("db", db), read("dy", dy), read("x", x), read("w", w),
                                read("mean", mean), read("rstd", rstd)});
  if (staged.active()) {
    layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, accumulate_dx);
    return staged.write_back();
  }
  const DType dtype = checked_backward_args(
      op, {{"dy", dy}, {"x", x}, {"w", w}, {"mean", mean}, {"rstd", rstd}},
      {{"dx", dx}, {"dw", dw}, {"db", db}, {"dy", dy}, {"x", x}, {"w", w}, {"mean", mean}, {"rstd", rstd}});
  const std::int64_t C = x.rank() > 0 ? x.size(-1) : 0;
  dispatch_float(dtype, [&]<class T>(T) {
    const auto [xr, dyr, dxr] = norm_backward_rows<T>(op, dx, dy, x, C);
    cpu::layernorm_backward<T>(
        dxr, vector_of<T>(op, "dw", dw, C), vector_of<T>(op, "db", db, C), dyr, xr,
        vector_of<T>(op, "w", w, C), vector_of<T>(op, "mean", mean, xr.rows),
        vector_of<T>(op, "rstd", rstd, xr.rows), accumulate_dx == Accumulate::Yes);
  });
}

void rmsnorm_forward(Tensor y, Tensor rstd, Tensor x, Tensor w, double eps) {
  constexpr const char* op = "rmsnorm_forward";
  if (on_cuda(op, {{"y", y}, {"rstd", rstd}, {"x", x}, {"w", w}})) {
    require_defined(op, {{"y", y}, {"x", x}, {"w", w}});
    check_same_shapes(op, {{"x", x}, {"y", y}});
    check_cuda_storage(op, {{"y", y}, {"x", x}, {"w", w}});
    const std::int64_t C = x.size(-1), rows = x.numel() / std::max<std::int64_t>(C, 1);
    check_vector(op, "w", w, C);
    check_vector(op, "rstd", rstd, rows);
    return cuda_backend_for(op).rmsnorm_forward(y, rstd, x, w, eps);
  }
  const Bf16Staging staged(op, {write("y", y), write("rstd", rstd), read("x", x), read("w", w)});
  if (staged.active()) {
    rmsnorm_forward(y, rstd, x, w, eps);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {{"y", y}, {"rstd", rstd}, {"x", x}, {"w", w}};
  const DType dtype = checked_float_inputs(op, all);
  const std::int64_t C = x.rank() > 0 ? x.size(-1) : 0;
  dispatch_float(dtype, [&]<class T>(T) {
    const auto xr = const_rows<T>(op, "x", x, C);
    const auto yr = rows<T>(op, "y", y, C);
    check_rows_match(op, "x", x, xr.rows, "y", y, yr.rows);
    cpu::rmsnorm_forward<T>(yr, vector_of<T>(op, "rstd", rstd, xr.rows), xr,
                            vector_of<T>(op, "w", w, C), eps);
  });
}

void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, Tensor rstd,
                      Accumulate accumulate_dx) {
  constexpr const char* op = "rmsnorm_backward";
  if (on_cuda(op, {{"dx", dx}, {"dw", dw}, {"dy", dy}, {"x", x}, {"w", w}, {"rstd", rstd}})) {
    require_defined(op, {{"dy", dy}, {"x", x}, {"w", w}, {"rstd", rstd}});
    check_same_shapes(op, {{"x", x}, {"dy", dy}, {"dx", dx}});
    check_cuda_storage(op, {{"dx", dx}, {"dy", dy}, {"x", x}, {"w", w}});
    const std::int64_t C = x.size(-1), rows = x.numel() / std::max<std::int64_t>(C, 1);
    check_vector(op, "w", w, C);
    check_vector(op, "dw", dw, C);
    check_vector(op, "rstd", rstd, rows);
    return cuda_backend_for(op).rmsnorm_backward(dx, dw, dy, x, w, rstd, accumulate_dx == Accumulate::Yes);
  }
  const Bf16Staging staged(op, {write_or_add("dx", dx, accumulate_dx), f32_gradient("dw", dw),
                                read("dy", dy), read("x", x), read("w", w), read("rstd", rstd)});
  if (staged.active()) {
    rmsnorm_backward(dx, dw, dy, x, w, rstd, accumulate_dx);
    return staged.write_back();
  }
  const DType dtype = checked_backward_args(op, {{"dy", dy}, {"x", x}, {"w", w}, {"rstd", rstd}},
                                            {{"dx", dx}, {"dw", dw}, {"dy", dy}, {"x", x}, {"w", w}, {"rstd", rstd}});
  const std::int64_t C = x.rank() > 0 ? x.size(-1) : 0;
  dispatch_float(dtype, [&]<class T>(T) {
    const auto [xr, dyr, dxr] = norm_backward_rows<T>(op, dx, dy, x, C);
    cpu::rmsnorm_backward<T>(dxr, vector_of<T>(op, "dw", dw, C), dyr, xr,
                             vector_of<T>(op, "w", w, C), vector_of<T>(op, "rstd", rstd, xr.rows),
                             accumulate_dx == Accumulate::Yes);
  });
}

}  // namespace kiln::ops
