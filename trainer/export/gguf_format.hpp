#pragma once
// The GGUF v3 container (ggml's docs/gguf.md), little-endian:
//   "GGUF" | uint32 version = 3 | uint64 tensor_count | uint64 metadata_kv_count
//   metadata: (string key, uint32 value_type, value) x kv_count
//   tensor infos: (string name, uint32 n_dims, uint64 ne[n_dims], uint32 ggml_type, uint64 offset)
//   padding to general.alignment (default 32), then the data section; every tensor's offset
//   (relative to the data section) is a multiple of the alignment.
// A string is uint64 length + UTF-8 bytes (no terminator); an array is uint32 element type +
// uint64 count + the elements. ne[0] is the innermost (fastest-varying) dimension, so a
// row-major [rows, cols] matrix is ne = {cols, rows}.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kiln::interop {

inline constexpr std::uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian uint32
inline constexpr std::uint32_t kGgufVersion = 3;
inline constexpr std::uint64_t kGgufDefaultAlignment = 32;

enum class GgufType : std::uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, boolean = 7,
  string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12,
};
std::string_view gguf_type_name(GgufType type);

// ggml tensor types kiln writes (values from ggml.h).
enum class GgmlType : std::uint32_t { f32 = 0, f16 = 1, q8_0 = 8, bf16 = 30 };
std::string_view ggml_type_name(GgmlType type);
bool is_known_ggml_type(std::uint32_t value);
// Bytes of `elements` values in a row (Q8_0: 34-byte blocks of 32; elements % 32 == 0).
std::uint64_t ggml_row_bytes(GgmlType type, std::uint64_t elements);
inline constexpr std::uint64_t kQ8_0BlockElements = 32;
inline constexpr std::uint64_t kQ8_0BlockBytes = 34;  // fp16 scale + 32 int8

// A metadata value: a scalar of one of the types, or an array of scalars of one type.
using GgufScalar = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t,
                                std::int32_t, float, bool, std::string, std::uint64_t, std::int64_t, double>;
struct GgufValue {
  GgufType type = GgufType::uint32;
  GgufScalar scalar;                // when type != array
  GgufType element_type = GgufType::uint32;  // when type == array
  std::vector<GgufScalar> elements;

  static GgufValue of(GgufScalar scalar);
  static GgufValue array_of(GgufType element_type, std::vector<GgufScalar> elements);
  bool operator==(const GgufValue&) const = default;
};
GgufType type_of(const GgufScalar& scalar);

struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> ne;  // ggml order: ne[0] innermost
  GgmlType type = GgmlType::f32;
  std::uint64_t offset = 0;       // into the data section
  std::uint64_t element_count() const;
  std::uint64_t byte_count() const;
};

}  // namespace kiln::interop
