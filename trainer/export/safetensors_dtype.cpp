#include "trainer/export/safetensors_dtype.hpp"

#include <array>
#include <bit>
#include <cstring>
#include <utility>

#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"

namespace kiln::interop {

namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; kiln reads it in place");

struct DtypeRow {
  SafetensorsDtype dtype;
  std::string_view name;
  std::size_t bytes;
};

constexpr std::array<DtypeRow, 15> kDtypes{{
    {SafetensorsDtype::BOOL, "BOOL", 1},       {SafetensorsDtype::U8, "U8", 1},
    {SafetensorsDtype::I8, "I8", 1},           {SafetensorsDtype::I16, "I16", 2},
    {SafetensorsDtype::U16, "U16", 2},         {SafetensorsDtype::I32, "I32", 4},
    {SafetensorsDtype::U32, "U32", 4},         {SafetensorsDtype::I64, "I64", 8},
    {SafetensorsDtype::U64, "U64", 8},         {SafetensorsDtype::F8_E4M3, "F8_E4M3", 1},
    {SafetensorsDtype::F8_E5M2, "F8_E5M2", 1}, {SafetensorsDtype::F16, "F16", 2},
    {SafetensorsDtype::BF16, "BF16", 2},       {SafetensorsDtype::F32, "F32", 4},
    {SafetensorsDtype::F64, "F64", 8},
}};

const DtypeRow& row_of(SafetensorsDtype dtype) {
  for (const auto& row : kDtypes) {
    if (row.dtype == dtype) return row;
  }
  fail("unknown safetensors dtype {}", static_cast<int>(dtype));
}

template <class Stored, class Convert>
void decode_as(std::span<const std::byte> bytes, std::span<float> out, Convert convert) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    Stored value;
    std::memcpy(&value, bytes.data() + i * sizeof(Stored), sizeof(Stored));
    out[i] = convert(value);
  }
}

template <class Stored, class Convert>
void encode_as(std::span<const float> values, std::span<std::byte> out, Convert convert) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    const Stored value = convert(values[i]);
    std::memcpy(out.data() + i * sizeof(Stored), &value, sizeof(Stored));
  }
}

void check_sizes(SafetensorsDtype dtype, std::size_t byte_count, std::size_t element_count) {
  if (byte_count != element_count * safetensors_dtype_bytes(dtype)) {
    fail("safetensors: {} bytes do not hold {} elements of {}", byte_count, element_count,
         safetensors_dtype_name(dtype));
  }
}

}  // namespace

std::optional<SafetensorsDtype> parse_safetensors_dtype(std::string_view name) {
  for (const auto& row : kDtypes) {
    if (row.name == name) return row.dtype;
  }
  return std::nullopt;
}

std::string_view safetensors_dtype_name(SafetensorsDtype dtype) { return row_of(dtype).name; }
std::size_t safetensors_dtype_bytes(SafetensorsDtype dtype) { return row_of(dtype).bytes; }

bool is_weight_dtype(SafetensorsDtype dtype) {
  return dtype == SafetensorsDtype::F16 || dtype == SafetensorsDtype::BF16 ||
         dtype == SafetensorsDtype::F32 || dtype == SafetensorsDtype::F64;
}

void decode_floats(SafetensorsDtype dtype, std::span<const std::byte> bytes, std::span<float> out) {
  check_sizes(dtype, bytes.size(), out.size());
  switch (dtype) {
    case SafetensorsDtype::F32:
      if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());  // an empty span may be null
      return;
    case SafetensorsDtype::F64:
      return decode_as<double>(bytes, out, [](double v) { return static_cast<float>(v); });
    case SafetensorsDtype::F16:
      return decode_as<std::uint16_t>(bytes, out, [](std::uint16_t bits) { return to_float(Float16{bits}); });
    case SafetensorsDtype::BF16:
      return decode_as<std::uint16_t>(bytes, out, [](std::uint16_t bits) { return to_float(BFloat16{bits}); });
    default:
      fail("safetensors dtype {} is not a floating-point weight type (F32, F16, BF16, F64)",
           safetensors_dtype_name(dtype));
  }
}

void encode_floats(SafetensorsDtype dtype, std::span<const float> values, std::span<std::byte> out) {
  check_sizes(dtype, out.size(), values.size());
  switch (dtype) {
    case SafetensorsDtype::F32:
      std::memcpy(out.data(), values.data(), out.size());
      return;
    case SafetensorsDtype::F16:
      return encode_as<std::uint16_t>(values, out, [](float v) { return to_float16(v).bits; });
    case SafetensorsDtype::BF16:
      return encode_as<std::uint16_t>(values, out, [](float v) { return to_bfloat16(v).bits; });
    default:
      fail("kiln writes safetensors weights as F32, F16 or BF16, not {}", safetensors_dtype_name(dtype));
  }
}

}  // namespace kiln::interop
