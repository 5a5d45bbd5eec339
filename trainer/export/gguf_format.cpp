#include "trainer/export/gguf_format.hpp"

#include <algorithm>

#include "trainer/core/error.hpp"

namespace kiln::interop {

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::uint8: return "uint8";
    case GgufType::int8: return "int8";
    case GgufType::uint16: return "uint16";
    case GgufType::int16: return "int16";
    case GgufType::uint32: return "uint32";
    case GgufType::int32: return "int32";
    case GgufType::float32: return "float32";
    case GgufType::boolean: return "bool";
    case GgufType::string: return "string";
    case GgufType::array: return "array";
    case GgufType::uint64: return "uint64";
    case GgufType::int64: return "int64";
    case GgufType::float64: return "float64";
  }
  return "?";
}

std::string_view ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::f32: return "F32";
    case GgmlType::f16: return "F16";
    case GgmlType::q8_0: return "Q8_0";
    case GgmlType::bf16: return "BF16";
  }
  return "?";
}

bool is_known_ggml_type(std::uint32_t value) {
  return value == 0 || value == 1 || value == 8 || value == 30;
}

std::uint64_t ggml_row_bytes(GgmlType type, std::uint64_t elements) {
  switch (type) {
    case GgmlType::f32: return elements * 4;
    case GgmlType::f16:
    case GgmlType::bf16: return elements * 2;
    case GgmlType::q8_0:
      if (elements % kQ8_0BlockElements != 0) fail("Q8_0 rows need a multiple of 32 elements, got {}", elements);
      return elements / kQ8_0BlockElements * kQ8_0BlockBytes;
  }
  fail("unknown ggml type {}", static_cast<std::uint32_t>(type));
}

GgufValue GgufValue::of(GgufScalar scalar) {
  GgufValue value;
  value.type = type_of(scalar);
  value.scalar = std::move(scalar);
  return value;
}

GgufValue GgufValue::array_of(GgufType element_type, std::vector<GgufScalar> elements) {
  GgufValue value;
  value.type = GgufType::array;
  value.element_type = element_type;
  value.elements = std::move(elements);
  return value;
}

GgufType type_of(const GgufScalar& scalar) {
  // The variant's alternatives are listed in the order of this table.
  static constexpr GgufType kTypes[] = {GgufType::uint8,  GgufType::int8,    GgufType::uint16, GgufType::int16,
                                        GgufType::uint32, GgufType::int32,   GgufType::float32, GgufType::boolean,
                                        GgufType::string, GgufType::uint64, GgufType::int64,  GgufType::float64};
  return kTypes[scalar.index()];
}

std::uint64_t GgufTensorInfo::element_count() const {
  std::uint64_t count = 1;
  for (const auto extent : ne) count *= extent;
  return count;
}

std::uint64_t GgufTensorInfo::byte_count() const {
  if (ne.empty()) return ggml_row_bytes(type, 1);
  return ggml_row_bytes(type, ne[0]) * (element_count() / std::max<std::uint64_t>(ne[0], 1));
}

}  // namespace kiln::interop
