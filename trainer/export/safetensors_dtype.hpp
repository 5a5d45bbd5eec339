#pragma once
// Element types of the safetensors format (https://github.com/huggingface/safetensors):
// their names in a header, their sizes, and conversion of the floating ones to and from
// float32. kiln reads and writes F32, F16 and BF16 weights; the other types are known so a
// header that uses them is validated (sizes) and refused by name only where a weight is read.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace kiln::interop {

enum class SafetensorsDtype : std::uint8_t {
  BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F8_E4M3, F8_E5M2, F16, BF16, F32, F64
};

std::optional<SafetensorsDtype> parse_safetensors_dtype(std::string_view name);
std::string_view safetensors_dtype_name(SafetensorsDtype dtype);
std::size_t safetensors_dtype_bytes(SafetensorsDtype dtype);
// F16, BF16, F32 and F64: the types a weight may be read from.
bool is_weight_dtype(SafetensorsDtype dtype);

// Little-endian bytes of `dtype` -> float32 (F64 is rounded). out.size() elements.
// Throws kiln::Error for a type that is not a weight type.
void decode_floats(SafetensorsDtype dtype, std::span<const std::byte> bytes, std::span<float> out);
// float32 -> little-endian bytes of dtype (F32, F16 or BF16; round to nearest even).
void encode_floats(SafetensorsDtype dtype, std::span<const float> values, std::span<std::byte> out);

}  // namespace kiln::interop
