#include "kernels/ops/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/bf16.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "kernels/ops/bf16_staging.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

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

// Whether every tensor is bf16 and all share one contiguous shape: the element-wise ops then
// run on the bf16 storage in one pass instead of staging through fp32.
bool all_dense_bf16(std::initializer_list<Arg> args) {
  const Tensor& first = args.begin()->tensor;
  for (const Arg& arg : args)
    if (!arg.tensor.defined() || arg.tensor.dtype != DType::BF16 || arg.tensor.device != Device::Cpu ||
        arg.tensor.shape != first.shape || !arg.tensor.is_contiguous())
      return false;
  return true;
}

std::uint16_t* bf16_bits(const Tensor& tensor) { return static_cast<std::uint16_t*>(tensor.ptr); }

}  // namespace

void add(Tensor out, Tensor a, Tensor b) {
  if (on_cuda("add", {{"out", out}, {"a", a}, {"b", b}})) {
    require_defined("add", {{"out", out}, {"a", a}, {"b", b}});
    check_same_shapes("add", {{"out", out}, {"a", a}, {"b", b}});
    return cuda_backend_for("add").add(out, a, b);
  }
  if (all_dense_bf16({{"out", out}, {"a", a}, {"b", b}}))
    return cpu::add_bf16(bf16_bits(out), bf16_bits(a), bf16_bits(b), out.numel());
  const Bf16Staging staged("add", {write("out", out), read("a", a), read("b", b)});
  if (staged.active()) {
    add(out, a, b);
    return staged.write_back();
  }
  const DType dtype = flat_dtype("add", {{"out", out}, {"a", a}, {"b", b}});
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::add<T>(pointer<T>(out), pointer<T>(a), pointer<T>(b), out.numel());
  });
}

void add_to(Tensor dst, Tensor src) {
  if (on_cuda("add_to", {{"dst", dst}, {"src", src}})) {
    require_defined("add_to", {{"dst", dst}, {"src", src}});
    check_same_shapes("add_to", {{"dst", dst}, {"src", src}});
    if (dst.dtype != src.dtype)
      fail("ops::add_to: `dst` is {} but `src` is {}; on the CUDA device they share one dtype", dst.str(), src.str());
    return cuda_backend_for("add_to").add_to(dst, src);
  }
  if (all_dense_bf16({{"dst", dst}, {"src", src}})) return cpu::axpy_bf16(bf16_bits(dst), 1.0f, bf16_bits(src), dst.numel());
  const Bf16Staging staged("add_to", {read_write("dst", dst), read("src", src)});
  if (staged.active()) {
    add_to(dst, src);
    return staged.write_back();
  }
  const DType dtype = flat_dtype("add_to", {{"dst", dst}, {"src", src}});
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::axpy<T>(pointer<T>(dst), T(1), pointer<T>(src), dst.numel());
  });
}

void axpy(Tensor y, double alpha, Tensor x) {
  if (all_dense_bf16({{"y", y}, {"x", x}}))
    return cpu::axpy_bf16(bf16_bits(y), static_cast<float>(alpha), bf16_bits(x), y.numel());
  const Bf16Staging staged("axpy", {read_write("y", y), read("x", x)});
  if (staged.active()) {
    axpy(y, alpha, x);
    return staged.write_back();
  }
  const DType dtype = flat_dtype("axpy", {{"y", y}, {"x", x}});
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::axpy<T>(pointer<T>(y), static_cast<T>(alpha), pointer<T>(x), y.numel());
  });
}

void scale(Tensor x, double factor) {
  if (all_dense_bf16({{"x", x}})) return cpu::scale_bf16(bf16_bits(x), static_cast<float>(factor), x.numel());
  const Bf16Staging staged("scale", {read_write("x", x)});
  if (staged.active()) {
    scale(x, factor);
    return staged.write_back();
  }
  const DType dtype = flat_dtype("scale", {{"x", x}});
  dispatch_float(
      dtype, [&]<class T>(T) { cpu::scale<T>(pointer<T>(x), static_cast<T>(factor), x.numel()); });
}

namespace {

// A copy with the CUDA device on one side or both. On the device, equal dtypes copy between
// any strides and conversions need contiguous sides. Across devices the bytes travel as one
// contiguous block in the source's dtype (uploads: the destination's), so a strided or
// converting copy is staged through a contiguous host tensor.
void copy_with_device(Tensor dst, Tensor src) {
  constexpr const char* op = "copy";
  cuda_backend::CudaBackend& cuda = cuda_backend_for(op);
  if (dst.device == Device::Cuda && src.device == Device::Cuda) return cuda.convert(dst, src);
  if (dst.device == Device::Cuda) {  // upload
    check_contiguous(op, "dst", dst);
    if (src.dtype == dst.dtype && src.is_contiguous()) return cuda.copy_to_device(dst.ptr, src.ptr, src.nbytes());
    const OwnedTensor staged(dst.dtype, src.shape);
    copy(staged, src);
    return cuda.copy_to_device(dst.ptr, staged.tensor().ptr, staged.tensor().nbytes());
  }
  check_contiguous(op, "src", src);  // download
  if (src.dtype == dst.dtype && dst.is_contiguous()) return cuda.copy_to_host(dst.ptr, src.ptr, src.nbytes());
  const OwnedTensor staged(src.dtype, src.shape);
  cuda.copy_to_host(staged.tensor().ptr, src.ptr, src.nbytes());
  copy(dst, staged);
}

}  // namespace

void copy(Tensor dst, Tensor src) {
  constexpr const char* op = "copy";
  require_defined(op, {{"dst", dst}, {"src", src}});
  check_shape(op, "dst", dst, src.shape);
  const bool same_dtype = dst.dtype == src.dtype;
  if (!same_dtype && !(is_floating(dst.dtype) && is_floating(src.dtype)))
    fail("ops::{}: cannot convert {} to {}; only floating dtypes convert", op, src.str(),
         dst.str());
  if (dst.device == Device::Cuda || src.device == Device::Cuda) return copy_with_device(dst, src);
  if (same_dtype && dst.is_contiguous() && src.is_contiguous()) {
    if (src.nbytes() > 0) std::memmove(dst.ptr, src.ptr, src.nbytes());
    return;
  }
  // The conversions of bf16 training (working copies, checkpoints) take the vectorised loops.
  if (src.dtype == DType::BF16 && dst.dtype == DType::F32 && dst.is_contiguous())
    return widen_into(static_cast<float*>(dst.ptr), src);
  if (src.dtype == DType::F32 && dst.dtype == DType::BF16 && src.is_contiguous())
    return narrow_into(dst, static_cast<const float*>(src.ptr));
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
  if (on_cuda("zero", {{"x", x}})) {
    check_contiguous("zero", "x", x);
    return cuda_backend_for("zero").zero(x.ptr, x.nbytes());
  }
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
  if (!is_floating(x.dtype)) fail("ops::{}: `x` is {}; fill takes a floating dtype", op, x.str());
  if (on_cuda(op, {{"x", x}})) {  // not on a hot path: filled on the host, then uploaded
    const OwnedTensor filled(x.dtype, x.shape);
    fill(filled, value);
    return copy(x, filled);
  }
  if (x.dtype == DType::BF16 && x.is_contiguous()) {
    const BFloat16 bits = to_bfloat16(static_cast<float>(value));
    std::fill_n(static_cast<BFloat16*>(x.ptr), x.numel(), bits);
    return;
  }
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

void nonfinite_flag(Tensor flag, Tensor x) {
  constexpr const char* op = "nonfinite_flag";
  require_defined(op, {{"flag", flag}});
  if (on_cuda(op, {{"flag", flag}, {"x", x}})) {
    // x is finite exactly when its f64 sum of squares is (f32 squares cannot overflow f64):
    // the multi-tensor reduction kernel serves, and one read-back turns it into the flag.
    if (flag.dtype != DType::F64 || flag.numel() != 1)
      fail("ops::{}: `flag` is {}; expected one f64 element", op, flag.str());
    if (x.dtype != DType::F32) fail("ops::{}: `x` is {}; on the CUDA device it must be f32", op, x.str());
    check_contiguous(op, "x", x);
    cuda_backend::CudaBackend& cuda = cuda_backend_for(op);
    cuda.sum_of_squares(flag, x, nullptr, nullptr, 0);
    double sum = 0;
    cuda.copy_to_host(&sum, flag.ptr, sizeof sum);
    const double broken = std::isfinite(sum) ? 0.0 : 1.0;
    return cuda.copy_to_device(flag.ptr, &broken, sizeof broken);
  }
  require_cpu(op, {{"flag", flag}});
  if (flag.dtype != DType::F64 || flag.numel() != 1)
    fail("ops::{}: `flag` is {}; expected one f64 element", op, flag.str());
  bool finite = true;
  if (x.defined() && x.dtype == DType::BF16) {
    require_cpu(op, {{"x", x}});
    check_contiguous(op, "x", x);
    finite = cpu::all_finite_bf16(static_cast<const std::uint16_t*>(x.ptr), x.numel());
    *flag.data<double>() = finite ? 0.0 : 1.0;
    return;
  }
  const DType dtype = flat_dtype(op, {{"x", x}});
  dispatch_float(dtype, [&]<class T>(T) { finite = cpu::all_finite<T>(pointer<T>(x), x.numel()); });
  *flag.data<double>() = finite ? 0.0 : 1.0;
}

}  // namespace kiln::ops
