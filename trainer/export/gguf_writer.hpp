#pragma once
// Writes a GGUF v3 file (gguf_format.hpp) holding one tensor in memory at a time: metadata and
// tensor infos are declared first (so every offset is known), then write() streams the header
// and asks for each tensor's bytes in declaration order. The file appears as PATH.tmp and is
// renamed when whole.
//
//   GgufWriter writer;
//   writer.add_metadata("general.architecture", GgufValue::of(std::string("llama")));
//   writer.add_tensor("token_embd.weight", {C, V}, GgmlType::f16);
//   writer.write(path, [&](const GgufTensorInfo& info) { return bytes_of(info.name); });
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "trainer/export/gguf_format.hpp"

namespace kiln::interop {

class GgufWriter {
 public:
  explicit GgufWriter(std::uint64_t alignment = kGgufDefaultAlignment);

  // Keys are unique; "general.alignment" is added by write() when the alignment is not the
  // default (and always recorded, so readers need not assume it).
  void add_metadata(std::string key, GgufValue value);
  // ne in ggml order (innermost first). Offsets follow declaration order, each aligned.
  void add_tensor(std::string name, std::vector<std::uint64_t> ne, GgmlType type);

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  using Producer = std::function<std::vector<std::byte>(const GgufTensorInfo&)>;
  // Returns the file's size in bytes.
  std::uint64_t write(const std::filesystem::path& path, const Producer& produce);

 private:
  std::uint64_t alignment_;
  std::uint64_t data_bytes_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace kiln::interop
