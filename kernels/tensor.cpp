#include "kernels/tensor.hpp"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

namespace kiln {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
    case DType::U32:
      return 4;
    case DType::BF16:
    case DType::F16:
    case DType::U16:
      return 2;
    case DType::U8:
      return 1;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "f32";
    case DType::F64:
      return "f64";
    case DType::BF16:
      return "bf16";
    case DType::F16:
      return "f16";
    case DType::I32:
      return "i32";
    case DType::I64:
      return "i64";
    case DType::U32:
      return "u32";
    case DType::U16:
      return "u16";
    case DType::U8:
      return "u8";
  }
  return "?";
}

std::string_view device_name(Device device) { return device == Device::Cpu ? "cpu" : "cuda"; }

bool is_floating(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F64 || dtype == DType::BF16 || dtype == DType::F16;
}

// ---- 16-bit floats --------------------------------------------------------------------------

float to_float(BFloat16 value) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(value.bits) << 16);
}

BFloat16 to_bfloat16(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  if (std::isnan(value)) return BFloat16{static_cast<std::uint16_t>((bits >> 16) | 0x40)};
  // Round to nearest even: add 0x7FFF plus the lowest kept bit, then truncate.
  const std::uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return BFloat16{static_cast<std::uint16_t>((bits + rounding) >> 16)};
}

float to_float(Float16 value) {
  const std::uint32_t sign = static_cast<std::uint32_t>(value.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (value.bits >> 10) & 0x1Fu;
  const std::uint32_t mantissa = value.bits & 0x3FFu;
  if (exponent == 0x1F)  // inf or NaN
    return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

Float16 to_float16(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  if (std::isnan(value)) return Float16{static_cast<std::uint16_t>(sign | 0x7E00u)};
  const float magnitude = std::fabs(value);
  if (magnitude >= 65520.0f)  // rounds past the largest finite half (65504)
    return Float16{static_cast<std::uint16_t>(sign | 0x7C00u)};
  if (magnitude < 0x1.0p-14f) {
    // Subnormal half: a multiple of 2^-24; nearbyint rounds half to even by default.
    const auto units = static_cast<std::uint16_t>(std::nearbyint(magnitude * 0x1.0p24f));
    return Float16{static_cast<std::uint16_t>(sign | units)};
  }
  const std::uint32_t magnitude_bits = std::bit_cast<std::uint32_t>(magnitude);
  // Rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits, nearest even;
  // a mantissa carry correctly bumps the exponent.
  const std::uint32_t rebased = magnitude_bits - (112u << 23);
  const std::uint32_t rounding = 0xFFFu + ((rebased >> 13) & 1u);
  return Float16{static_cast<std::uint16_t>(sign | ((rebased + rounding) >> 13))};
}

// ---- Shape -----------------------------------------------------------------------------------

Shape::Shape(std::initializer_list<std::int64_t> dims)
    : Shape(std::span<const std::int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const std::int64_t> dims) {
  if (dims.size() > static_cast<std::size_t>(kMaxDims))
    fail("tensor shape has {} dims; kiln supports at most {}", dims.size(), kMaxDims);
  rank_ = static_cast<int>(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) dims_[i] = dims[i];
}

std::int64_t Shape::numel() const {
  std::int64_t count = 1;
  for (int i = 0; i < rank_; ++i) count *= (*this)[i];
  return count;
}

std::string Shape::str() const {
  std::string text = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i > 0) text += ", ";
    text += std::to_string((*this)[i]);
  }
  return text + "]";
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides = shape;
  std::int64_t running = 1;
  for (int i = shape.rank() - 1; i >= 0; --i) {
    strides[i] = running;
    running *= shape[i];
  }
  return strides;
}

// ---- Tensor ----------------------------------------------------------------------------------

Tensor::Tensor(void* data, DType type, Shape extents, Device where)
    : ptr(data), dtype(type), device(where), shape(extents), strides(contiguous_strides(extents)) {
  for (std::int64_t extent : shape)
    if (extent < 0) fail("tensor shape {} has a negative extent", shape.str());
}

Tensor::Tensor(void* data, DType type, Shape extents, Shape element_strides, Device where)
    : ptr(data), dtype(type), device(where), shape(extents), strides(element_strides) {
  if (strides.rank() != shape.rank())
    fail("tensor strides {} do not match shape {}", strides.str(), shape.str());
}

static int normalise_dim(int dim, int rank, const Tensor& tensor) {
  const int normalised = dim < 0 ? dim + rank : dim;
  if (normalised < 0 || normalised >= rank)
    fail("dim {} is out of range for tensor {}", dim, tensor.str());
  return normalised;
}

std::int64_t Tensor::size(int dim) const { return shape[normalise_dim(dim, rank(), *this)]; }

std::int64_t Tensor::stride(int dim) const { return strides[normalise_dim(dim, rank(), *this)]; }

std::size_t Tensor::nbytes() const { return static_cast<std::size_t>(numel()) * element_size(); }

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (int i = rank() - 1; i >= 0; --i) {
    // Extent-1 dims can carry any stride without changing the memory order.
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

Tensor Tensor::reshape(Shape extents) const {
  if (!is_contiguous()) fail("reshape of a strided tensor {} to {}", str(), extents.str());
  int inferred = -1;
  std::int64_t known = 1;
  for (int i = 0; i < extents.rank(); ++i) {
    if (extents[i] == -1) {
      if (inferred >= 0) fail("reshape of {} to {}: more than one -1", str(), extents.str());
      inferred = i;
    } else {
      known *= extents[i];
    }
  }
  if (inferred >= 0 && known > 0 && numel() % known == 0) extents[inferred] = numel() / known;
  if (extents.numel() != numel())
    fail("reshape of {} to {}: element counts differ", str(), extents.str());
  return Tensor(ptr, dtype, extents, device);
}

Tensor Tensor::flatten_rows() const {
  if (rank() == 0) fail("flatten_rows of a rank-0 tensor");
  return reshape({-1, size(-1)});
}

Tensor Tensor::narrow(int dim, std::int64_t start, std::int64_t length) const {
  const int d = normalise_dim(dim, rank(), *this);
  if (start < 0 || length < 0 || start + length > shape[d])
    fail("narrow(dim {}, start {}, length {}) is outside tensor {}", dim, start, length, str());
  Tensor part = *this;
  part.shape[d] = length;
  part.ptr = static_cast<std::byte*>(ptr) + static_cast<std::ptrdiff_t>(start * strides[d]) *
                                                static_cast<std::ptrdiff_t>(element_size());
  return part;
}

Tensor Tensor::select(std::int64_t index) const {
  if (rank() == 0 || index < 0 || index >= shape[0])
    fail("select({}) is outside tensor {}", index, str());
  std::array<std::int64_t, kMaxDims> extents{}, element_strides{};
  for (int i = 1; i < rank(); ++i) {
    extents[static_cast<std::size_t>(i - 1)] = shape[i];
    element_strides[static_cast<std::size_t>(i - 1)] = strides[i];
  }
  const auto lower = static_cast<std::size_t>(rank() - 1);
  void* start = static_cast<std::byte*>(ptr) + static_cast<std::ptrdiff_t>(index * strides[0]) *
                                                   static_cast<std::ptrdiff_t>(element_size());
  return Tensor(start, dtype, Shape(std::span(extents.data(), lower)),
                Shape(std::span(element_strides.data(), lower)), device);
}

std::string Tensor::str() const {
  std::string text =
      std::string(dtype_name(dtype)) + shape.str() + " " + std::string(device_name(device));
  if (!is_contiguous()) text += " strided" + strides.str();
  if (!defined()) text += " (undefined)";
  return text;
}

void Tensor::fail_dtype(std::string_view wanted) const {
  fail("tensor {} accessed as {}", str(), wanted);
}

// ---- host storage ----------------------------------------------------------------------------

OwnedTensor::OwnedTensor(DType dtype, Shape extents)
    : buffer_(static_cast<std::size_t>(extents.numel()) * dtype_size(dtype)) {
  // A zero-element tensor still gets a non-null pointer so that it counts as defined.
  if (buffer_.empty()) buffer_ = HostBuffer(HostBuffer::kAlignment);
  view_ = buffer_.view(dtype, extents);
}

std::vector<std::int64_t> index_values(const Tensor& tensor, std::string_view who) {
  std::vector<std::int64_t> values(static_cast<std::size_t>(tensor.numel()));
  const auto convert = [&](auto* source) {
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::int64_t>(source[i]);
  };
  switch (tensor.dtype) {
    case DType::I32: convert(tensor.data<std::int32_t>()); break;
    case DType::U32: convert(tensor.data<std::uint32_t>()); break;
    case DType::I64: convert(tensor.data<std::int64_t>()); break;
    case DType::U16: convert(tensor.data<std::uint16_t>()); break;
    default: fail("{} is {}; index tensors are i32, u32, i64 or u16", who, tensor.str());
  }
  return values;
}

}  // namespace kiln
