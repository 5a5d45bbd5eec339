// kiln::ops: argument checks and device/dtype dispatch. The kernels live in kernels/cpu/
// (and, later, kernels/cuda/); nothing here does arithmetic on tensor data except the index
// conversions and the dtype-converting copy.
#include "kernels/ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/adamw.hpp"
#include "kernels/cpu/cross_entropy.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/embedding.hpp"
#include "kernels/cpu/flash_attention.hpp"
#include "kernels/cpu/gelu.hpp"
#include "kernels/cpu/layernorm.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/rmsnorm.hpp"
#include "kernels/cpu/rope.hpp"
#include "kernels/cpu/swiglu.hpp"

namespace kiln::ops {

namespace {

// A tensor argument with the name the error messages use.
struct Arg {
  const char* name;
  const Tensor& tensor;
};

void require_defined(const char* op, std::initializer_list<Arg> args) {
  for (const Arg& arg : args)
    if (!arg.tensor.defined()) fail("ops::{}: required tensor `{}` is undefined", op, arg.name);
}

// Every op has a CPU kernel; the CUDA kernels slot in here, per op, as they are written.
void require_cpu(const char* op, std::initializer_list<Arg> args) {
  for (const Arg& arg : args)
    if (arg.tensor.defined() && arg.tensor.device != Device::Cpu)
      fail("ops::{}: `{}` is {}, but this op has no CUDA implementation yet; pass host tensors", op,
           arg.name, arg.tensor.str());
}

// The one floating dtype (F32 or F64) shared by every defined tensor in `args`.
DType float_dtype(const char* op, std::initializer_list<Arg> args) {
  const Arg* first = nullptr;
  for (const Arg& arg : args) {
    if (!arg.tensor.defined()) continue;
    if (arg.tensor.dtype != DType::F32 && arg.tensor.dtype != DType::F64)
      fail("ops::{}: `{}` is {}; CPU kernels take f32 or f64", op, arg.name, arg.tensor.str());
    if (first == nullptr) {
      first = &arg;
    } else if (arg.tensor.dtype != first->tensor.dtype) {
      fail("ops::{}: `{}` is {} but `{}` is {}; all floating tensors must share one dtype", op,
           arg.name, arg.tensor.str(), first->name, first->tensor.str());
    }
  }
  if (first == nullptr) fail("ops::{}: no floating tensor given", op);
  return first->tensor.dtype;
}

// The common prologue of an op on floating tensors: every argument defined, on the host, and
// of one floating dtype, which it returns.
DType checked_float_inputs(const char* op, std::initializer_list<Arg> args) {
  require_defined(op, args);
  require_cpu(op, args);
  return float_dtype(op, args);
}

// A backward's arguments: every input defined; a gradient output may be left undefined (not
// wanted); all on the CPU in one float dtype.
DType checked_backward_args(const char* op, std::initializer_list<Arg> inputs, std::initializer_list<Arg> all) {
  require_defined(op, inputs);
  require_cpu(op, all);
  return float_dtype(op, all);
}

// Calls fn(T{}) with T = float or double.
template <class Fn>
void dispatch_float(DType dtype, Fn&& fn) {
  if (dtype == DType::F32) {
    fn(float{});
  } else {
    fn(double{});
  }
}

template <class T>
T* pointer(const Tensor& tensor) {
  return static_cast<T*>(tensor.ptr);
}

void check_shape(const char* op, const char* name, const Tensor& tensor, const Shape& expected) {
  if (tensor.shape != expected)
    fail("ops::{}: `{}` is {}, expected shape {}", op, name, tensor.str(), expected.str());
}

void check_contiguous(const char* op, const char* name, const Tensor& tensor) {
  if (!tensor.is_contiguous())
    fail("ops::{}: `{}` is {} but must be contiguous", op, name, tensor.str());
}

// [..., C] as rows: unit inner stride, leading dims that flatten to one row stride.
template <class T>
cpu::RowView<T> rows(const char* op, const char* name, const Tensor& tensor, std::int64_t cols) {
  if (tensor.rank() == 0) fail("ops::{}: `{}` is {}; expected [..., C]", op, name, tensor.str());
  if (tensor.size(-1) != cols)
    fail("ops::{}: `{}` is {}; expected last dim {}", op, name, tensor.str(), cols);
  if (cols > 1 && tensor.stride(-1) != 1)
    fail("ops::{}: `{}` is {}; the last dim must have unit stride", op, name, tensor.str());
  std::int64_t row_stride = -1, n_rows = 1;
  for (int dim = tensor.rank() - 2; dim >= 0; --dim) {
    const std::int64_t extent = tensor.shape[dim];
    n_rows *= extent;
    if (extent == 1) continue;  // any stride is fine for a dim of one
    const std::int64_t stride = tensor.strides[dim];
    if (row_stride < 0) {
      row_stride = stride;
    } else if (stride != row_stride * (n_rows / extent)) {
      fail("ops::{}: `{}` is {}; its leading dims do not flatten to rows", op, name, tensor.str());
    }
  }
  if (row_stride < 0 || n_rows <= 1) row_stride = std::max<std::int64_t>(cols, 1);
  if (row_stride < cols)
    fail("ops::{}: `{}` is {}; rows overlap (row stride {} < {} columns)", op, name, tensor.str(),
         row_stride, cols);
  return {pointer<T>(tensor), n_rows, cols, row_stride};
}

template <class T>
cpu::RowView<const T> const_rows(const char* op, const char* name, const Tensor& tensor,
                                 std::int64_t cols) {
  const cpu::RowView<T> view = rows<T>(op, name, tensor, cols);
  return {view.data, view.rows, view.cols, view.stride};
}

// Optional gradient: an undefined view when the tensor is undefined.
template <class T>
cpu::RowView<T> optional_rows(const char* op, const char* name, const Tensor& tensor,
                              std::int64_t cols) {
  return tensor.defined() ? rows<T>(op, name, tensor, cols) : cpu::RowView<T>{};
}

void check_rows_match(const char* op, const char* name_a, const Tensor& a, std::int64_t rows_a,
                      const char* name_b, const Tensor& b, std::int64_t rows_b) {
  if (rows_a != rows_b)
    fail("ops::{}: `{}` {} has {} rows but `{}` {} has {}", op, name_a, a.str(), rows_a, name_b,
         b.str(), rows_b);
}

// An index tensor (ids, targets, positions, document ids) read as int64.
std::vector<std::int64_t> indices(const char* op, const char* name, const Tensor& tensor,
                                  std::int64_t expected_count) {
  if (tensor.numel() != expected_count)
    fail("ops::{}: `{}` is {}; expected {} elements", op, name, tensor.str(), expected_count);
  check_contiguous(op, name, tensor);
  std::vector<std::int64_t> values(static_cast<std::size_t>(expected_count));
  const auto convert = [&](auto* source) {
    for (std::size_t i = 0; i < values.size(); ++i)
      values[i] = static_cast<std::int64_t>(source[i]);
  };
  switch (tensor.dtype) {
    case DType::I32:
      convert(tensor.data<std::int32_t>());
      break;
    case DType::U32:
      convert(tensor.data<std::uint32_t>());
      break;
    case DType::I64:
      convert(tensor.data<std::int64_t>());
      break;
    case DType::U16:
      convert(tensor.data<std::uint16_t>());
      break;
    default:
      fail("ops::{}: `{}` is {}; index tensors are i32, u32, i64 or u16", op, name, tensor.str());
  }
  return values;
}

const std::uint8_t* optional_mask(const char* op, const Tensor& mask, std::int64_t rows) {
  if (!mask.defined()) return nullptr;
  if (mask.dtype != DType::U8)
    fail("ops::{}: `mask` is {}; expected u8 (non-zero = keep)", op, mask.str());
  if (mask.numel() != rows)
    fail("ops::{}: `mask` is {}; expected {} elements", op, mask.str(), rows);
  check_contiguous(op, "mask", mask);
  return mask.data<std::uint8_t>();
}

template <class T>
cpu::HeadView<T> heads(const char* op, const char* name, const Tensor& tensor) {
  if (tensor.rank() != 4)
    fail("ops::{}: `{}` is {}; expected [B, T, H, D]", op, name, tensor.str());
  if (tensor.size(3) > 1 && tensor.stride(3) != 1)
    fail("ops::{}: `{}` is {}; the head dim must have unit stride", op, name, tensor.str());
  return {pointer<T>(tensor), tensor.size(0),   tensor.size(1),   tensor.size(2),
          tensor.size(3),     tensor.stride(0), tensor.stride(1), tensor.stride(2)};
}

template <class T>
cpu::HeadView<const T> const_heads(const char* op, const char* name, const Tensor& tensor) {
  const cpu::HeadView<T> view = heads<T>(op, name, tensor);
  return {view.data, view.batch,        view.seq,        view.heads,
          view.dim,  view.batch_stride, view.seq_stride, view.head_stride};
}

// A [C] parameter vector (weight, bias) or its gradient; nullptr when undefined.
template <class T>
T* vector_of(const char* op, const char* name, const Tensor& tensor, std::int64_t length) {
  if (!tensor.defined()) return nullptr;
  check_shape(op, name, tensor, Shape{length});
  return pointer<T>(tensor);
}

}  // namespace

// ---- matmul ----------------------------------------------------------------------------------

void linear_forward(Tensor y, Tensor x, Tensor w, Tensor b) {
  constexpr const char* op = "linear_forward";
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

// ---- normalisation ---------------------------------------------------------------------------

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

// ---- activations -----------------------------------------------------------------------------

void gelu_forward(Tensor y, Tensor x) {
  constexpr const char* op = "gelu_forward";
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

// ---- rotary position embedding ---------------------------------------------------------------

std::vector<double> rope_inv_freq(std::int64_t head_dim, const RopeConfig& config) {
  if (head_dim <= 0 || head_dim % 2 != 0)
    fail("ops::rope: head_dim {} must be positive and even", head_dim);
  if (config.theta <= 0) fail("ops::rope: rope_theta {} must be positive", config.theta);
  if (config.llama3_scaling &&
      (config.factor <= 0 || config.high_freq_factor <= config.low_freq_factor ||
       config.low_freq_factor <= 0 || config.original_max_position_embeddings <= 0))
    fail(
        "ops::rope: llama3 scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor "
        "and original_max_position_embeddings > 0 (got {}, {}, {}, {})",
        config.factor, config.low_freq_factor, config.high_freq_factor,
        config.original_max_position_embeddings);
  return cpu::rope_inv_freq(head_dim, config.theta, config.llama3_scaling, config.factor,
                            config.low_freq_factor, config.high_freq_factor,
                            static_cast<double>(config.original_max_position_embeddings));
}

namespace {

void rope_apply(const char* op, Tensor y, Tensor x, Tensor positions, const RopeConfig& config,
                int direction) {
  const std::initializer_list<Arg> all = {{"y", y}, {"x", x}, {"positions", positions}};
  require_defined(op, all);
  require_cpu(op, all);
  const DType dtype = float_dtype(op, {{"y", y}, {"x", x}});
  if (x.rank() != 4) fail("ops::{}: `x` is {}; expected [B, T, H, Dh]", op, x.str());
  check_shape(op, "y", y, x.shape);
  const std::vector<double> inv_freq = rope_inv_freq(x.size(3), config);
  const std::vector<std::int64_t> pos = indices(op, "positions", positions, x.size(0) * x.size(1));
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::rope_rotate<T>(heads<T>(op, "y", y), const_heads<T>(op, "x", x), pos.data(),
                        inv_freq.data(), direction);
  });
}

}  // namespace

void rope_forward(Tensor y, Tensor x, Tensor positions, const RopeConfig& config) {
  rope_apply("rope_forward", y, x, positions, config, +1);
}

void rope_backward(Tensor dx, Tensor dy, Tensor positions, const RopeConfig& config) {
  rope_apply("rope_backward", dx, dy, positions, config, -1);
}

// ---- embedding -------------------------------------------------------------------------------

namespace {

// An embedding table (or its gradient) is a contiguous [V, C] matrix; returns {V, C}.
std::pair<std::int64_t, std::int64_t> table_shape(const char* op, const char* name, const Tensor& table) {
  if (table.rank() != 2) fail("ops::{}: `{}` is {}; expected [V, C]", op, name, table.str());
  check_contiguous(op, name, table);
  return {table.size(0), table.size(1)};
}

void embedding_forward_impl(const char* op, Tensor out, Tensor ids, Tensor table, bool accumulate,
                            std::int64_t first_id, bool strict) {
  const std::initializer_list<Arg> all = {{"out", out}, {"ids", ids}, {"table", table}};
  require_defined(op, all);
  require_cpu(op, all);
  const DType dtype = float_dtype(op, {{"out", out}, {"table", table}});
  const auto [V, C] = table_shape(op, "table", table);
  dispatch_float(dtype, [&]<class T>(T) {
    const auto outr = rows<T>(op, "out", out, C);
    const std::vector<std::int64_t> id = indices(op, "ids", ids, outr.rows);
    if (strict)
      for (std::size_t i = 0; i < id.size(); ++i)
        if (id[i] < 0 || id[i] >= V)
          fail("ops::{}: id {} at position {} is outside the table of {} rows", op, id[i], i, V);
    cpu::embedding_forward<T>(outr, id.data(), pointer<T>(table), V, first_id, accumulate);
  });
}

void embedding_backward_impl(const char* op, Tensor dtable, Tensor dout, Tensor ids,
                             std::int64_t first_id) {
  const std::initializer_list<Arg> all = {{"dtable", dtable}, {"dout", dout}, {"ids", ids}};
  require_defined(op, all);
  require_cpu(op, all);
  const DType dtype = float_dtype(op, {{"dtable", dtable}, {"dout", dout}});
  const auto [V, C] = table_shape(op, "dtable", dtable);
  dispatch_float(dtype, [&]<class T>(T) {
    const auto doutr = const_rows<T>(op, "dout", dout, C);
    const std::vector<std::int64_t> id = indices(op, "ids", ids, doutr.rows);
    cpu::embedding_backward<T>(pointer<T>(dtable), V, doutr, id.data(), first_id);
  });
}

}  // namespace

void embedding_forward(Tensor out, Tensor ids, Tensor table, Accumulate accumulate) {
  embedding_forward_impl("embedding_forward", out, ids, table, accumulate == Accumulate::Yes, 0,
                         true);
}

void embedding_backward(Tensor dtable, Tensor dout, Tensor ids) {
  embedding_backward_impl("embedding_backward", dtable, dout, ids, 0);
}

void embedding_forward_vocab_parallel(Tensor out, Tensor ids, Tensor table, std::int64_t first_id) {
  embedding_forward_impl("embedding_forward_vocab_parallel", out, ids, table, false, first_id,
                         false);
}

void embedding_backward_vocab_parallel(Tensor dtable, Tensor dout, Tensor ids,
                                       std::int64_t first_id) {
  embedding_backward_impl("embedding_backward_vocab_parallel", dtable, dout, ids, first_id);
}

// ---- cross-entropy ---------------------------------------------------------------------------

namespace {

std::int64_t logits_vocab(const char* op, const Tensor& logits, std::int64_t valid) {
  if (logits.rank() != 2) fail("ops::{}: `logits` is {}; expected [N, V]", op, logits.str());
  if (valid <= 0 || valid > logits.size(1))
    fail("ops::{}: valid_vocab {} must be in [1, {}] for logits {}", op, valid, logits.size(1),
         logits.str());
  return logits.size(1);
}

// Targets as int64; those of rows that count must lie in [0, limit).
std::vector<std::int64_t> checked_targets(const char* op, const Tensor& targets,
                                          const std::uint8_t* mask, std::int64_t rows,
                                          std::int64_t limit) {
  std::vector<std::int64_t> target = indices(op, "targets", targets, rows);
  for (std::int64_t i = 0; i < rows; ++i) {
    if (mask && mask[i] == 0) continue;
    const std::int64_t t = target[static_cast<std::size_t>(i)];
    if (t < 0 || t >= limit)
      fail("ops::{}: target {} at row {} is outside the vocabulary of {} tokens", op, t, i, limit);
  }
  return target;
}

template <class T>
LossSum masked_sum(const T* losses, const std::uint8_t* mask, std::int64_t rows) {
  LossSum total;
  for (std::int64_t i = 0; i < rows; ++i) {
    if (mask && mask[i] == 0) continue;
    total.sum += static_cast<double>(losses[i]);
    ++total.count;
  }
  return total;
}

}  // namespace

LossSum cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets, Tensor mask,
                              std::int64_t valid_vocab) {
  constexpr const char* op = "cross_entropy_forward";
  require_defined(op, {{"lse", lse}, {"logits", logits}, {"targets", targets}});
  require_cpu(
      op,
      {{"losses", losses}, {"lse", lse}, {"logits", logits}, {"targets", targets}, {"mask", mask}});
  const DType dtype = float_dtype(op, {{"losses", losses}, {"lse", lse}, {"logits", logits}});
  const std::int64_t V = logits_vocab(op, logits, valid_vocab);
  LossSum total;
  dispatch_float(dtype, [&]<class T>(T) {
    const auto logit_rows = const_rows<T>(op, "logits", logits, V);
    const std::int64_t N = logit_rows.rows;
    const std::uint8_t* keep = optional_mask(op, mask, N);
    const auto target = checked_targets(op, targets, keep, N, valid_vocab);
    std::vector<T> scratch_losses;
    T* loss_out = vector_of<T>(op, "losses", losses, N);
    if (loss_out == nullptr) {
      scratch_losses.resize(static_cast<std::size_t>(N));
      loss_out = scratch_losses.data();
    }
    cpu::cross_entropy_forward<T>(loss_out, vector_of<T>(op, "lse", lse, N), logit_rows,
                                  target.data(), keep, valid_vocab);
    total = masked_sum(loss_out, keep, N);
  });
  return total;
}

namespace {

// Shared by the serial and vocab-parallel backward. `target_limit` bounds the targets of rows
// that count: the valid vocabulary when serial; under vocab parallelism a target may live on
// another rank, so only its sign can be checked here.
void cross_entropy_backward_impl(const char* op, Tensor dlogits, Tensor logits, Tensor targets,
                                 Tensor lse, Tensor mask, std::int64_t valid_local,
                                 std::int64_t first_id, std::int64_t target_limit,
                                 double grad_scale) {
  const std::initializer_list<Arg> required = {
      {"dlogits", dlogits}, {"logits", logits}, {"targets", targets}, {"lse", lse}};
  require_defined(op, required);
  require_cpu(op, required);
  require_cpu(op, {{"mask", mask}});
  const DType dtype = float_dtype(op, {{"dlogits", dlogits}, {"logits", logits}, {"lse", lse}});
  const std::int64_t V = logits_vocab(op, logits, valid_local);
  check_shape(op, "dlogits", dlogits, logits.shape);
  dispatch_float(dtype, [&]<class T>(T) {
    const auto logit_rows = const_rows<T>(op, "logits", logits, V);
    const std::int64_t N = logit_rows.rows;
    const std::uint8_t* keep = optional_mask(op, mask, N);
    const auto target = checked_targets(op, targets, keep, N, target_limit);
    cpu::cross_entropy_backward<T>(rows<T>(op, "dlogits", dlogits, V), logit_rows, target.data(),
                                   vector_of<T>(op, "lse", lse, N), keep, valid_local, first_id,
                                   grad_scale);
  });
}

}  // namespace

void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse, Tensor mask,
                            std::int64_t valid_vocab, double grad_scale) {
  cross_entropy_backward_impl("cross_entropy_backward", dlogits, logits, targets, lse, mask,
                              valid_vocab, 0, valid_vocab, grad_scale);
}

void cross_entropy_backward_vocab_parallel(Tensor dlogits, Tensor logits, Tensor targets,
                                           Tensor lse, Tensor mask, std::int64_t valid_local,
                                           std::int64_t first_id, double grad_scale) {
  cross_entropy_backward_impl("cross_entropy_backward_vocab_parallel", dlogits, logits, targets,
                              lse, mask, valid_local, first_id,
                              std::numeric_limits<std::int64_t>::max(), grad_scale);
}

void cross_entropy_local_max(Tensor row_max, Tensor logits, std::int64_t valid_local) {
  constexpr const char* op = "cross_entropy_local_max";
  require_defined(op, {{"row_max", row_max}, {"logits", logits}});
  require_cpu(op, {{"row_max", row_max}, {"logits", logits}});
  const DType dtype = float_dtype(op, {{"row_max", row_max}, {"logits", logits}});
  if (logits.rank() != 2) fail("ops::{}: `logits` is {}; expected [N, V]", op, logits.str());
  if (valid_local < 0 || valid_local > logits.size(1))
    fail("ops::{}: valid_local {} outside [0, {}]", op, valid_local, logits.size(1));
  dispatch_float(dtype, [&]<class T>(T) {
    const auto logit_rows = const_rows<T>(op, "logits", logits, logits.size(1));
    cpu::row_max<T>(vector_of<T>(op, "row_max", row_max, logit_rows.rows), logit_rows, valid_local);
  });
}

void cross_entropy_local_sums(Tensor sum_exp, Tensor target_logit, Tensor logits, Tensor targets,
                              Tensor row_max, std::int64_t valid_local, std::int64_t first_id) {
  constexpr const char* op = "cross_entropy_local_sums";
  const std::initializer_list<Arg> all = {{"sum_exp", sum_exp},
                                          {"target_logit", target_logit},
                                          {"logits", logits},
                                          {"targets", targets},
                                          {"row_max", row_max}};
  require_defined(op, all);
  require_cpu(op, all);
  const DType dtype = float_dtype(op, {{"sum_exp", sum_exp},
                                       {"target_logit", target_logit},
                                       {"logits", logits},
                                       {"row_max", row_max}});
  if (logits.rank() != 2) fail("ops::{}: `logits` is {}; expected [N, V]", op, logits.str());
  if (valid_local < 0 || valid_local > logits.size(1))
    fail("ops::{}: valid_local {} outside [0, {}]", op, valid_local, logits.size(1));
  dispatch_float(dtype, [&]<class T>(T) {
    const auto logit_rows = const_rows<T>(op, "logits", logits, logits.size(1));
    const std::int64_t N = logit_rows.rows;
    const std::vector<std::int64_t> target = indices(op, "targets", targets, N);
    cpu::row_sum_exp_and_target<T>(
        vector_of<T>(op, "sum_exp", sum_exp, N), vector_of<T>(op, "target_logit", target_logit, N),
        logit_rows, target.data(), vector_of<T>(op, "row_max", row_max, N), valid_local, first_id);
  });
}

LossSum cross_entropy_finish(Tensor losses, Tensor lse, Tensor row_max, Tensor sum_exp,
                             Tensor target_logit, Tensor mask) {
  constexpr const char* op = "cross_entropy_finish";
  const std::initializer_list<Arg> required = {
      {"lse", lse}, {"row_max", row_max}, {"sum_exp", sum_exp}, {"target_logit", target_logit}};
  require_defined(op, required);
  require_cpu(op, required);
  require_cpu(op, {{"losses", losses}, {"mask", mask}});
  const DType dtype = float_dtype(op, {{"losses", losses},
                                       {"lse", lse},
                                       {"row_max", row_max},
                                       {"sum_exp", sum_exp},
                                       {"target_logit", target_logit}});
  const std::int64_t N = lse.numel();
  LossSum total;
  dispatch_float(dtype, [&]<class T>(T) {
    const std::uint8_t* keep = optional_mask(op, mask, N);
    const T* maxima = vector_of<T>(op, "row_max", row_max, N);
    const T* sums = vector_of<T>(op, "sum_exp", sum_exp, N);
    const T* picked = vector_of<T>(op, "target_logit", target_logit, N);
    T* lse_out = vector_of<T>(op, "lse", lse, N);
    T* loss_out = vector_of<T>(op, "losses", losses, N);
    for (std::int64_t i = 0; i < N; ++i) {
      const bool counted = keep == nullptr || keep[i] != 0;
      lse_out[i] = counted ? maxima[i] + std::log(sums[i]) : T(0);
      const T loss = counted ? lse_out[i] - picked[i] : T(0);
      if (loss_out) loss_out[i] = loss;
      if (counted) {
        total.sum += static_cast<double>(loss);
        ++total.count;
      }
    }
  });
  return total;
}

void softmax_forward(Tensor probs, Tensor logits, std::int64_t valid_vocab, double temperature) {
  constexpr const char* op = "softmax_forward";
  require_defined(op, {{"probs", probs}, {"logits", logits}});
  require_cpu(op, {{"probs", probs}, {"logits", logits}});
  const DType dtype = float_dtype(op, {{"probs", probs}, {"logits", logits}});
  const std::int64_t V = logits_vocab(op, logits, valid_vocab);
  check_shape(op, "probs", probs, logits.shape);
  if (!(temperature > 0)) fail("ops::{}: temperature {} must be positive", op, temperature);
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::softmax_rows<T>(rows<T>(op, "probs", probs, V), const_rows<T>(op, "logits", logits, V),
                         valid_vocab, temperature);
  });
}

// ---- flash attention -------------------------------------------------------------------------

namespace {

struct AttentionDims {
  std::int64_t batch, tq, tk, heads, kv_heads, dim;
};

AttentionDims check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& lse) {
  for (const Arg& arg : {Arg{"q", q}, Arg{"k", k}, Arg{"v", v}})
    if (arg.tensor.rank() != 4)
      fail("ops::{}: `{}` is {}; expected [B, T, H, Dh]", op, arg.name, arg.tensor.str());
  const AttentionDims dims{q.size(0), q.size(1), k.size(1), q.size(2), k.size(2), q.size(3)};
  if (k.shape != v.shape) fail("ops::{}: k {} and v {} differ in shape", op, k.str(), v.str());
  if (k.size(0) != dims.batch || k.size(3) != dims.dim)
    fail("ops::{}: q {} and k {} disagree on batch or head dim", op, q.str(), k.str());
  if (dims.kv_heads == 0 || dims.heads % dims.kv_heads != 0)
    fail("ops::{}: {} query heads are not a multiple of {} kv heads (q {}, k {})", op, dims.heads,
         dims.kv_heads, q.str(), k.str());
  if (dims.tq > dims.tk) fail("ops::{}: more queries than keys (q {}, k {})", op, q.str(), k.str());
  check_shape(op, "lse", lse, Shape{dims.batch, dims.heads, dims.tq});
  check_contiguous(op, "lse", lse);
  return dims;
}

double softmax_scale(const AttentionOptions& options, std::int64_t dim) {
  return options.softmax_scale != 0.0 ? options.softmax_scale
                                      : 1.0 / std::sqrt(static_cast<double>(dim));
}

std::vector<std::int64_t> document_ids(const char* op, const Tensor& doc_ids,
                                       const AttentionDims& dims) {
  if (!doc_ids.defined()) return {};
  if (doc_ids.rank() != 2 || doc_ids.size(0) != dims.batch || doc_ids.size(1) != dims.tk)
    fail("ops::{}: `doc_ids` is {}; expected [{}, {}]", op, doc_ids.str(), dims.batch, dims.tk);
  return indices(op, "doc_ids", doc_ids, dims.batch * dims.tk);
}

}  // namespace

void flash_attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                             const AttentionOptions& options) {
  constexpr const char* op = "flash_attention_forward";
  const std::initializer_list<Arg> required = {
      {"out", out}, {"lse", lse}, {"q", q}, {"k", k}, {"v", v}};
  require_defined(op, required);
  require_cpu(op, required);
  require_cpu(op, {{"doc_ids", doc_ids}});
  const DType dtype = float_dtype(op, required);
  const AttentionDims dims = check_attention(op, q, k, v, lse);
  check_shape(op, "out", out, q.shape);
  const std::vector<std::int64_t> docs = document_ids(op, doc_ids, dims);
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::flash_attention_forward<T>(
        heads<T>(op, "out", out), pointer<T>(lse), const_heads<T>(op, "q", q),
        const_heads<T>(op, "k", k), const_heads<T>(op, "v", v),
        docs.empty() ? nullptr : docs.data(), options.causal, softmax_scale(options, dims.dim));
  });
}

void flash_attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                              Tensor v, Tensor out, Tensor lse, Tensor doc_ids,
                              const AttentionOptions& options) {
  constexpr const char* op = "flash_attention_backward";
  const std::initializer_list<Arg> required = {{"dq", dq},     {"dk", dk},   {"dv", dv},
                                               {"dout", dout}, {"q", q},     {"k", k},
                                               {"v", v},       {"out", out}, {"lse", lse}};
  require_defined(op, required);
  require_cpu(op, required);
  require_cpu(op, {{"doc_ids", doc_ids}});
  const DType dtype = float_dtype(op, required);
  const AttentionDims dims = check_attention(op, q, k, v, lse);
  check_shape(op, "out", out, q.shape);
  check_shape(op, "dout", dout, q.shape);
  check_shape(op, "dq", dq, q.shape);
  check_shape(op, "dk", dk, k.shape);
  check_shape(op, "dv", dv, v.shape);
  const std::vector<std::int64_t> docs = document_ids(op, doc_ids, dims);
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::flash_attention_backward<T>(
        heads<T>(op, "dq", dq), heads<T>(op, "dk", dk), heads<T>(op, "dv", dv),
        const_heads<T>(op, "dout", dout), const_heads<T>(op, "q", q), const_heads<T>(op, "k", k),
        const_heads<T>(op, "v", v), const_heads<T>(op, "out", out), pointer<T>(lse),
        docs.empty() ? nullptr : docs.data(), options.causal, softmax_scale(options, dims.dim));
  });
}

// ---- optimizer -------------------------------------------------------------------------------

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

// ---- elementwise -----------------------------------------------------------------------------

namespace {

// The checks shared by the flat element-wise ops: same shape, contiguous, one float dtype.
DType flat_dtype(const char* op, std::initializer_list<Arg> args) {
  require_defined(op, args);
  require_cpu(op, args);
  const DType dtype = float_dtype(op, args);
  const Arg& first = *args.begin();
  for (const Arg& arg : args) {
    check_shape(op, arg.name, arg.tensor, first.tensor.shape);
    check_contiguous(op, arg.name, arg.tensor);
  }
  return dtype;
}

// One element as double / from double, for the converting copy.
double load_element(const std::byte* at, DType dtype) {
  switch (dtype) {
    case DType::F32: {
      float value;
      std::memcpy(&value, at, sizeof value);
      return value;
    }
    case DType::F64: {
      double value;
      std::memcpy(&value, at, sizeof value);
      return value;
    }
    case DType::BF16: {
      BFloat16 value;
      std::memcpy(&value, at, sizeof value);
      return to_float(value);
    }
    case DType::F16: {
      Float16 value;
      std::memcpy(&value, at, sizeof value);
      return to_float(value);
    }
    default:
      return 0.0;
  }
}

void store_element(std::byte* at, DType dtype, double value) {
  switch (dtype) {
    case DType::F32: {
      const auto v = static_cast<float>(value);
      std::memcpy(at, &v, sizeof v);
      break;
    }
    case DType::F64:
      std::memcpy(at, &value, sizeof value);
      break;
    case DType::BF16: {
      const BFloat16 v = to_bfloat16(static_cast<float>(value));
      std::memcpy(at, &v, sizeof v);
      break;
    }
    case DType::F16: {
      const Float16 v = to_float16(static_cast<float>(value));
      std::memcpy(at, &v, sizeof v);
      break;
    }
    default:
      break;
  }
}

// Calls visit(dst_offset, src_offset) in elements for every element, in row-major order.
template <class Visit>
void for_each_offset(const Shape& shape, const Shape& dst_strides, const Shape& src_strides,
                     Visit&& visit) {
  const std::int64_t count = shape.numel();
  for (std::int64_t linear = 0; linear < count; ++linear) {
    std::int64_t rest = linear, dst = 0, src = 0;
    for (int dim = shape.rank() - 1; dim >= 0; --dim) {
      const std::int64_t index = rest % shape[dim];
      rest /= shape[dim];
      dst += index * dst_strides[dim];
      src += index * src_strides[dim];
    }
    visit(dst, src);
  }
}

}  // namespace

void add(Tensor out, Tensor a, Tensor b) {
  const DType dtype = flat_dtype("add", {{"out", out}, {"a", a}, {"b", b}});
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::add<T>(pointer<T>(out), pointer<T>(a), pointer<T>(b), out.numel());
  });
}

void add_to(Tensor dst, Tensor src) {
  const DType dtype = flat_dtype("add_to", {{"dst", dst}, {"src", src}});
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::axpy<T>(pointer<T>(dst), T(1), pointer<T>(src), dst.numel());
  });
}

void axpy(Tensor y, double alpha, Tensor x) {
  const DType dtype = flat_dtype("axpy", {{"y", y}, {"x", x}});
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::axpy<T>(pointer<T>(y), static_cast<T>(alpha), pointer<T>(x), y.numel());
  });
}

void scale(Tensor x, double factor) {
  const DType dtype = flat_dtype("scale", {{"x", x}});
  dispatch_float(
      dtype, [&]<class T>(T) { cpu::scale<T>(pointer<T>(x), static_cast<T>(factor), x.numel()); });
}

void copy(Tensor dst, Tensor src) {
  constexpr const char* op = "copy";
  require_defined(op, {{"dst", dst}, {"src", src}});
  require_cpu(op, {{"dst", dst}, {"src", src}});
  check_shape(op, "dst", dst, src.shape);
  const bool same_dtype = dst.dtype == src.dtype;
  if (!same_dtype && !(is_floating(dst.dtype) && is_floating(src.dtype)))
    fail("ops::{}: cannot convert {} to {}; only floating dtypes convert", op, src.str(),
         dst.str());
  if (same_dtype && dst.is_contiguous() && src.is_contiguous()) {
    if (src.nbytes() > 0) std::memmove(dst.ptr, src.ptr, src.nbytes());
    return;
  }
  auto* to = static_cast<std::byte*>(dst.ptr);
  const auto* from = static_cast<const std::byte*>(src.ptr);
  const auto to_size = static_cast<std::int64_t>(dst.element_size());
  const auto from_size = static_cast<std::int64_t>(src.element_size());
  for_each_offset(src.shape, dst.strides, src.strides, [&](std::int64_t d, std::int64_t s) {
    if (same_dtype) {
      std::memcpy(to + d * to_size, from + s * from_size, static_cast<std::size_t>(to_size));
    } else {
      store_element(to + d * to_size, dst.dtype, load_element(from + s * from_size, src.dtype));
    }
  });
}

void zero(Tensor x) {
  require_defined("zero", {{"x", x}});
  require_cpu("zero", {{"x", x}});
  if (x.is_contiguous()) {
    if (x.nbytes() > 0) std::memset(x.ptr, 0, x.nbytes());
    return;
  }
  auto* base = static_cast<std::byte*>(x.ptr);
  const auto size = static_cast<std::int64_t>(x.element_size());
  for_each_offset(x.shape, x.strides, x.strides, [&](std::int64_t offset, std::int64_t) {
    std::memset(base + offset * size, 0, static_cast<std::size_t>(size));
  });
}

void fill(Tensor x, double value) {
  constexpr const char* op = "fill";
  require_defined(op, {{"x", x}});
  require_cpu(op, {{"x", x}});
  if (!is_floating(x.dtype)) fail("ops::{}: `x` is {}; fill takes a floating dtype", op, x.str());
  if ((x.dtype == DType::F32 || x.dtype == DType::F64) && x.is_contiguous()) {
    dispatch_float(x.dtype, [&]<class T>(T) {
      cpu::fill<T>(pointer<T>(x), static_cast<T>(value), x.numel());
    });
    return;
  }
  auto* base = static_cast<std::byte*>(x.ptr);
  const auto size = static_cast<std::int64_t>(x.element_size());
  for_each_offset(x.shape, x.strides, x.strides, [&](std::int64_t offset, std::int64_t) {
    store_element(base + offset * size, x.dtype, value);
  });
}

bool all_finite(Tensor x) {
  const DType dtype = flat_dtype("all_finite", {{"x", x}});
  bool finite = true;
  dispatch_float(dtype, [&]<class T>(T) { finite = cpu::all_finite<T>(pointer<T>(x), x.numel()); });
  return finite;
}

}  // namespace kiln::ops
