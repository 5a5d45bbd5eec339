#pragma once
// Tensor views and host storage (DESIGN.md §4).
//
// A Tensor is a plain, non-owning view: {pointer, dtype, shape, strides, device}. It never
// allocates or frees; storage belongs to a memory::DeviceBuffer or memory::Arena
// (kernels/memory/), or to a HostBuffer / OwnedTensor (host scratch built on them). Views do
// not track constness: ops never write to the tensors they document as inputs.
//
// Shapes have at most five dimensions; extents and strides are int64 and counted in
// elements (not bytes). A default-constructed Tensor is "undefined" (ptr == nullptr); ops use
// that for optional arguments (a missing bias, a gradient that is not wanted).
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kernels/memory/device_buffer.hpp"
#include "trainer/core/error.hpp"

namespace kiln {

enum class DType : std::uint8_t { F32, F64, BF16, F16, I32, I64, U32, U16, U8 };
enum class Device : std::uint8_t { Cpu, Cuda };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);     // "f32", "bf16", "u8", ...
std::string_view device_name(Device device);  // "cpu", "cuda"
bool is_floating(DType dtype);                // F32, F64, BF16, F16

// 16-bit float storage types: only the bit pattern, so that they are trivially copyable and
// identical on host and device. Conversions from float round to nearest even; NaN stays NaN.
struct BFloat16 {
  std::uint16_t bits = 0;
};
struct Float16 {
  std::uint16_t bits = 0;
};
float to_float(BFloat16 value);
float to_float(Float16 value);
BFloat16 to_bfloat16(float value);
Float16 to_float16(float value);

// The dtype that stores a C++ type: dtype_of<float> == DType::F32.
template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::BF16;
};
template <>
struct DTypeOf<Float16> {
  static constexpr DType value = DType::F16;
};
template <>
struct DTypeOf<std::int32_t> {
  static constexpr DType value = DType::I32;
};
template <>
struct DTypeOf<std::int64_t> {
  static constexpr DType value = DType::I64;
};
template <>
struct DTypeOf<std::uint32_t> {
  static constexpr DType value = DType::U32;
};
template <>
struct DTypeOf<std::uint16_t> {
  static constexpr DType value = DType::U16;
};
template <>
struct DTypeOf<std::uint8_t> {
  static constexpr DType value = DType::U8;
};
template <class T>
inline constexpr DType dtype_of = DTypeOf<std::remove_cv_t<T>>::value;

inline constexpr int kMaxDims = 5;

// Up to kMaxDims extents (or strides). Unused trailing slots are always zero, so equality
// compares only the used dimensions.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);

  int rank() const { return rank_; }
  std::int64_t operator[](int dim) const { return dims_[static_cast<std::size_t>(dim)]; }
  std::int64_t& operator[](int dim) { return dims_[static_cast<std::size_t>(dim)]; }
  std::int64_t numel() const;  // product of the extents; 1 for rank 0
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  bool operator==(const Shape& other) const = default;
  std::string str() const;  // "[2, 3, 4]"

 private:
  std::array<std::int64_t, kMaxDims> dims_{};
  int rank_ = 0;
};

// Row-major strides of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& shape);

struct Tensor {
  void* ptr = nullptr;
  DType dtype = DType::F32;
  Device device = Device::Cpu;
  Shape shape;
  Shape strides;  // in elements

  Tensor() = default;
  // A contiguous (row-major) view.
  Tensor(void* data, DType type, Shape extents, Device where = Device::Cpu);
  // A strided view, e.g. q inside a fused [B, T, (Hq + 2 Hkv) * Dh] QKV buffer.
  Tensor(void* data, DType type, Shape extents, Shape element_strides, Device where);

  // Contiguous view with the dtype taken from the pointer: Tensor::of(ptr, {B, T, C}).
  template <class T>
  static Tensor of(T* data, Shape extents, Device where = Device::Cpu) {
    return Tensor(const_cast<std::remove_const_t<T>*>(data), dtype_of<T>, extents, where);
  }

  bool defined() const { return ptr != nullptr; }
  int rank() const { return shape.rank(); }
  // Negative dims count from the end: size(-1) is the innermost extent.
  std::int64_t size(int dim) const;
  std::int64_t stride(int dim) const;
  std::int64_t numel() const { return shape.numel(); }
  std::size_t element_size() const { return dtype_size(dtype); }
  std::size_t nbytes() const;  // numel * element size (the span only when contiguous)
  bool is_contiguous() const;

  // Typed pointer; throws kiln::Error when T is not the tensor's dtype.
  template <class T>
  T* data() const {
    if (dtype_of<T> != dtype) fail_dtype(dtype_name(dtype_of<T>));
    return static_cast<T*>(ptr);
  }

  // Same data, new shape; the tensor must be contiguous. One extent may be -1 (inferred).
  Tensor reshape(Shape extents) const;
  // [..., C] -> [numel / C, C]; contiguous only.
  Tensor flatten_rows() const;
  // Sub-range [start, start + length) of one dimension; keeps strides (a view, no copy).
  Tensor narrow(int dim, std::int64_t start, std::int64_t length) const;
  // The index-th entry of dimension 0, one rank lower: x.select(b) of [B, T, C] is [T, C].
  Tensor select(std::int64_t index) const;

  std::string str() const;  // "f32[2, 3] cpu" (+ " strided" when not contiguous)

 private:
  [[noreturn]] void fail_dtype(std::string_view wanted) const;
};

// ---- host storage ---------------------------------------------------------------------------

// Host memory for tests, file I/O scratch and short-lived temporaries: a DeviceBuffer from the
// host allocator (64-byte aligned, zero-filled), counted as workspace in the process ledger.
// Long-lived training buffers use a memory::Arena of their own category instead.
class HostBuffer : public memory::DeviceBuffer {
 public:
  static constexpr std::size_t kAlignment = memory::HostAllocator::kMinAlignment;

  HostBuffer() = default;
  explicit HostBuffer(std::size_t bytes) : DeviceBuffer(bytes, memory::MemoryCategory::workspace) {}
};

// A host tensor that owns its storage: a HostBuffer plus the contiguous view of all of it.
// Converts to Tensor, so it can be passed straight to ops.
class OwnedTensor {
 public:
  OwnedTensor() = default;
  OwnedTensor(DType dtype, Shape extents);  // zero-filled

  const Tensor& tensor() const { return view_; }
  operator Tensor() const { return view_; }  // NOLINT(google-explicit-constructor): a view
  template <class T>
  T* data() const {
    return view_.data<T>();
  }
  const Shape& shape() const { return view_.shape; }
  DType dtype() const { return view_.dtype; }
  std::int64_t numel() const { return view_.numel(); }
  std::int64_t size(int dim) const { return view_.size(dim); }

 private:
  HostBuffer buffer_;
  Tensor view_;
};

// The values of a contiguous index tensor (token ids, targets, positions, document ids:
// I32, U32, I64 or U16) widened to int64. Another dtype throws "<who> is <tensor>; index
// tensors are i32, u32, i64 or u16", so `who` names the caller and argument.
std::vector<std::int64_t> index_values(const Tensor& tensor, std::string_view who);

}  // namespace kiln
