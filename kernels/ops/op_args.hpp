#pragma once
// The argument checks every op shares (DESIGN.md §7): each op checks its tensors here, names
// the offending argument in its error, and then dispatches on device and dtype to a kernel in
// kernels/cpu/ (kernels/cuda/ as the CUDA backend grows). Views handed to the kernels
// (rows, heads, vectors) are built here, so the kernels never see a Tensor.
//
// Dtypes: the kernels compute in f32 or f64. bf16 storage is accepted by every op that
// computes on activations or weights: the op stages its bf16 tensors through fp32 scratch
// (bf16_staging.hpp, which states the rule: f64 all-f64; f32 and bf16 mix freely, except
// parameter gradients, which stay f32; results that are not storage stay f64). The optimizer
// takes f32 (or f64) gradients, masters and moments and an optional bf16 working copy;
// sum_of_squares and nonfinite_flag read bf16 directly.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "kernels/cpu/views.hpp"
#include "kernels/cuda/backend.hpp"
#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"

namespace kiln::ops::detail {

// A tensor argument with the name the error messages use.
struct Arg {
  const char* name;
  const Tensor& tensor;
};

inline void require_defined(const char* op, std::initializer_list<Arg> args) {
  for (const Arg& arg : args)
    if (!arg.tensor.defined()) fail("ops::{}: required tensor `{}` is undefined", op, arg.name);
}

// Every op has a CPU kernel; ops with a CUDA implementation ask on_cuda first, the others
// refuse device tensors here.
inline void require_cpu(const char* op, std::initializer_list<Arg> args) {
  for (const Arg& arg : args)
    if (arg.tensor.defined() && arg.tensor.device != Device::Cpu)
      fail("ops::{}: `{}` is {}, but this op has no CUDA implementation yet; pass host tensors", op,
           arg.name, arg.tensor.str());
}

// Whether the op runs on the CUDA backend: true when its defined tensors are on the CUDA
// device. Mixing devices in one op is an error (ops::copy moves tensors between them).
inline bool on_cuda(const char* op, std::initializer_list<Arg> args) {
  const Arg* on_device = nullptr;
  const Arg* on_host = nullptr;
  for (const Arg& arg : args) {
    if (!arg.tensor.defined()) continue;
    (arg.tensor.device == Device::Cuda ? on_device : on_host) = &arg;
  }
  if (on_device == nullptr) return false;
  if (on_host != nullptr)
    fail("ops::{}: `{}` is {} but `{}` is {}; an op's tensors must be on one device (ops::copy moves them)", op,
         on_device->name, on_device->tensor.str(), on_host->name, on_host->tensor.str());
  return true;
}

inline cuda_backend::CudaBackend& cuda_backend_for(const char* op) { return cuda_backend::active_backend(op); }

// Every defined tensor of `args` has the shape of the first one.
inline void check_same_shapes(const char* op, std::initializer_list<Arg> args) {
  const Arg& first = *args.begin();
  for (const Arg& arg : args)
    if (arg.tensor.defined() && arg.tensor.shape != first.tensor.shape)
      fail("ops::{}: `{}` is {}, expected the shape of `{}` {}", op, arg.name, arg.tensor.str(), first.name,
           first.tensor.str());
}

// The CUDA kernels take their storage tensors (activations, weights, their input gradients) in
// one dtype, f32 or bf16; statistics and parameter gradients are f32 (checked by the backend).
inline void check_cuda_storage(const char* op, std::initializer_list<Arg> args) {
  const Arg* first = nullptr;
  for (const Arg& arg : args) {
    if (!arg.tensor.defined()) continue;
    if (arg.tensor.dtype != DType::F32 && arg.tensor.dtype != DType::BF16)
      fail("ops::{}: `{}` is {}; the CUDA backend stores f32 or bf16", op, arg.name, arg.tensor.str());
    if (first == nullptr) first = &arg;
    if (arg.tensor.dtype != first->tensor.dtype)
      fail("ops::{}: `{}` is {} but `{}` is {}; on the CUDA device they share one dtype", op, arg.name,
           arg.tensor.str(), first->name, first->tensor.str());
  }
}

// A norm's per-row vector (mean, rstd) or per-channel parameter (w, b, dw, db) on the CUDA
// path: undefined, or exactly [n].
inline void check_vector(const char* op, const char* name, const Tensor& tensor, std::int64_t n) {
  if (tensor.defined() && (tensor.rank() != 1 || tensor.size(0) != n))
    fail("ops::{}: `{}` is {}, expected [{}]", op, name, tensor.str(), n);
}

// The one floating dtype (F32 or F64) shared by every defined tensor in `args`.
inline DType float_dtype(const char* op, std::initializer_list<Arg> args) {
  const Arg* first = nullptr;
  for (const Arg& arg : args) {
    if (!arg.tensor.defined()) continue;
    if (arg.tensor.dtype != DType::F32 && arg.tensor.dtype != DType::F64)
      fail("ops::{}: `{}` is {}; CPU kernels take f32 or f64{}", op, arg.name, arg.tensor.str(),
           arg.tensor.dtype == DType::BF16 ? " (bf16 only as staged storage, see bf16_staging.hpp)" : "");
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
inline DType checked_float_inputs(const char* op, std::initializer_list<Arg> args) {
  require_defined(op, args);
  require_cpu(op, args);
  return float_dtype(op, args);
}

// A backward's arguments: every input defined; a gradient output may be left undefined (not
// wanted); all on the CPU in one float dtype.
inline DType checked_backward_args(const char* op, std::initializer_list<Arg> inputs, std::initializer_list<Arg> all) {
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

inline void check_shape(const char* op, const char* name, const Tensor& tensor, const Shape& expected) {
  if (tensor.shape != expected)
    fail("ops::{}: `{}` is {}, expected shape {}", op, name, tensor.str(), expected.str());
}

inline void check_contiguous(const char* op, const char* name, const Tensor& tensor) {
  if (!tensor.is_contiguous())
    fail("ops::{}: `{}` is {} but must be contiguous", op, name, tensor.str());
}

// [..., C] as rows: unit inner stride, leading dims that flatten to one row stride.
struct RowLayout {
  std::int64_t rows, stride;
};

inline RowLayout row_layout(const char* op, const char* name, const Tensor& tensor, std::int64_t cols) {
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
  return {n_rows, row_stride};
}

template <class T>
cpu::RowView<T> rows(const char* op, const char* name, const Tensor& tensor, std::int64_t cols) {
  const RowLayout layout = row_layout(op, name, tensor, cols);
  return {pointer<T>(tensor), layout.rows, cols, layout.stride};
}

// The same rows as a device matrix for the CUDA GEMM; undefined tensor -> null data.
inline cuda_backend::RowMatrix row_matrix(const char* op, const char* name, const Tensor& tensor,
                                          std::int64_t cols) {
  if (!tensor.defined()) return {};
  const RowLayout layout = row_layout(op, name, tensor, cols);
  return {tensor.ptr, tensor.dtype, layout.rows, cols, layout.stride};
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

inline void check_rows_match(const char* op, const char* name_a, const Tensor& a, std::int64_t rows_a,
                      const char* name_b, const Tensor& b, std::int64_t rows_b) {
  if (rows_a != rows_b)
    fail("ops::{}: `{}` {} has {} rows but `{}` {} has {}", op, name_a, a.str(), rows_a, name_b,
         b.str(), rows_b);
}

// An index tensor (ids, targets, positions, document ids) read as int64.
inline std::vector<std::int64_t> indices(const char* op, const char* name, const Tensor& tensor,
                                         std::int64_t expected_count) {
  if (tensor.numel() != expected_count)
    fail("ops::{}: `{}` is {}; expected {} elements", op, name, tensor.str(), expected_count);
  check_contiguous(op, name, tensor);
  return index_values(tensor, fmt::format("ops::{}: `{}`", op, name));
}

inline const std::uint8_t* optional_mask(const char* op, const Tensor& mask, std::int64_t rows) {
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

}  // namespace kiln::ops::detail
