#pragma once
// Reads a GGUF v3 file (gguf_format.hpp): header, metadata, tensor infos, and tensors on
// demand. Every count, length and offset is checked against the file before it is used, so a
// truncated or corrupt file is a kiln::Error naming the file and the field, never a crash or
// a huge allocation. kiln uses it to test what its writer produced.
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/export/gguf_format.hpp"

namespace kiln::interop {

class GgufReader {
 public:
  explicit GgufReader(const std::filesystem::path& path);

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }  // the data section's start in the file
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  const GgufValue& at(std::string_view key) const;  // kiln::Error naming a missing key
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo& tensor(std::string_view name) const;

  std::vector<std::byte> read_bytes(std::string_view name) const;
  // F32, F16, BF16 or Q8_0 values as float32, in ggml order (row-major with ne[0] fastest).
  std::vector<float> read_floats(std::string_view name) const;

 private:
  std::filesystem::path path_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = kGgufDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, std::size_t, std::less<>> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
  mutable std::ifstream stream_;
};

}  // namespace kiln::interop
