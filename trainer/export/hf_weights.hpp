#pragma once
// The weights of a Hugging Face model directory: one model.safetensors, or shards listed by
// model.safetensors.index.json ({"metadata": {...}, "weight_map": {name: file}}). Every
// shard header is validated when opened; a name the index maps to a file that lacks it, or
// a name stored in two shards, is an error naming both.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/export/safetensors_reader.hpp"
#include "trainer/export/safetensors_writer.hpp"

namespace kiln::interop {

inline constexpr std::string_view kSafetensorsIndexFile = "model.safetensors.index.json";
inline constexpr std::string_view kSingleSafetensorsFile = "model.safetensors";
// An index lists one line per tensor: a few hundred kilobytes for the largest models.
inline constexpr std::uint64_t kMaxSafetensorsIndexBytes = 64u << 20;

class HfWeights {
 public:
  // Throws kiln::Error naming the directory when it holds neither file.
  explicit HfWeights(const std::filesystem::path& dir);

  bool has(std::string_view name) const { return where_.find(name) != where_.end(); }
  std::vector<std::string> names() const;
  const SafetensorsTensorInfo& info(std::string_view name) const;
  // The file holding `name` (for messages).
  const std::filesystem::path& file_of(std::string_view name) const;
  std::vector<float> read_floats(std::string_view name) const;
  std::string description() const;  // "DIR/model.safetensors" or "DIR (3 shards)"

 private:
  const SafetensorsReader& reader_of(std::string_view name) const;
  void add_shard(const std::filesystem::path& file);

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsReader>> shards_;
  std::map<std::string, std::size_t, std::less<>> where_;
};

// Splits entries, in order, into shards of at most max_shard_bytes (a tensor larger than
// that gets a shard of its own). One shard means a single model.safetensors.
std::vector<std::vector<SafetensorsEntry>> plan_shards(const std::vector<SafetensorsEntry>& entries,
                                                       std::uint64_t max_shard_bytes);
// "model-00001-of-00003.safetensors", or model.safetensors when there is one shard.
std::string shard_file_name(std::size_t index, std::size_t count);
// The index for these shards: {"metadata": {"total_size": N}, "weight_map": {...}}.
std::string safetensors_index_json(const std::vector<std::vector<SafetensorsEntry>>& shards);

}  // namespace kiln::interop
