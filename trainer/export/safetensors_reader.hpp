#pragma once
// Reads one .safetensors file (https://github.com/huggingface/safetensors):
//   8 bytes   N, little-endian uint64: the header's length
//   N bytes   a JSON object: name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an
//             optional "__metadata__" object of string -> string
//   the rest  the data section; offsets are relative to its start
// The header is validated as the format requires before any tensor is read: N at most
// 100 MB and inside the file, JSON starting with '{', no duplicate names, known dtypes,
// end - begin = elements x dtype size, and the tensors' byte ranges contiguous, without
// overlap, covering the data section exactly. Any violation is a kiln::Error naming the
// file, the tensor and the field. Tensors are read one at a time, on demand.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/export/safetensors_dtype.hpp"

namespace kiln::interop {

// The format's bound on the header length (as the reference implementation enforces).
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct SafetensorsTensorInfo {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::F32;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;  // byte offsets inside the data section
  std::uint64_t end = 0;
  std::uint64_t element_count() const;
};

struct SafetensorsHeader {
  std::vector<SafetensorsTensorInfo> tensors;  // ascending offsets
  std::map<std::string, std::string> metadata;
};

// Parses and validates a header; data_bytes is the length of the data section that follows
// it. `source` names the file in messages.
SafetensorsHeader parse_safetensors_header(std::string_view header_json, std::uint64_t data_bytes,
                                           std::string_view source);

class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<SafetensorsTensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const SafetensorsTensorInfo* find(std::string_view name) const;
  // Throws kiln::Error naming the file when the tensor is absent.
  const SafetensorsTensorInfo& tensor(std::string_view name) const;

  std::vector<std::byte> read_bytes(std::string_view name) const;
  // A weight (F32, F16, BF16 or F64) as float32.
  std::vector<float> read_floats(std::string_view name) const;

 private:
  std::filesystem::path path_;
  SafetensorsHeader header_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
  std::uint64_t data_start_ = 0;
  mutable std::ifstream stream_;
};

}  // namespace kiln::interop
