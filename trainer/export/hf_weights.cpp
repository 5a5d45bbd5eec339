#include "trainer/export/hf_weights.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "trainer/core/error.hpp"
#include "trainer/export/hf_config.hpp"

namespace kiln::interop {

namespace fs = std::filesystem;

namespace {

// Anything at all under that name, a dangling link or a symlink loop included: such a name is
// refused by the readers with a message naming it, rather than treated as absent.
bool something_at(const fs::path& path) {
  std::error_code error;
  return fs::exists(fs::symlink_status(path, error));
}

// The shard files an index names, in first-mention order, checked to stay inside dir.
std::vector<std::string> shard_files_of(const nlohmann::json& index, const fs::path& path) {
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    fail("{}: missing key \"weight_map\" (an object of tensor name -> file)", path.string());
  }
  std::vector<std::string> files;
  for (const auto& [name, file] : index["weight_map"].items()) {
    const std::string text = file.is_string() ? file.get<std::string>() : std::string();
    if (text.empty() || text.find('/') != std::string::npos || text == "." || text == "..") {
      fail("{}: weight_map.{} must name a file beside the index, found {}", path.string(), name, file.dump());
    }
    if (std::find(files.begin(), files.end(), text) == files.end()) files.push_back(text);
  }
  return files;
}

}  // namespace

HfWeights::HfWeights(const fs::path& dir) : dir_(dir) {
  const fs::path index_path = dir / kSafetensorsIndexFile;
  if (something_at(index_path)) {
    const auto index = read_json_file(index_path, kMaxSafetensorsIndexBytes);
    for (const auto& file : shard_files_of(index, index_path)) {
      if (!something_at(dir / file)) {
        fail("{}: weight_map names shard '{}', which is missing from {}", index_path.string(), file, dir.string());
      }
      add_shard(dir / file);
    }
    for (const auto& [name, file] : index["weight_map"].items()) {
      const auto found = where_.find(name);
      if (found == where_.end() || shards_[found->second]->path().filename() != file.get<std::string>()) {
        fail("{}: weight_map says '{}' is in {}, but that file does not hold it", index_path.string(), name,
             file.get<std::string>());
      }
    }
    return;
  }
  const fs::path single = dir / kSingleSafetensorsFile;
  if (!something_at(single)) {
    fail("{} holds neither {} nor {} (kiln imports safetensors weights; convert .bin checkpoints with "
         "transformers' save_pretrained(safe_serialization=True))",
         dir.string(), kSingleSafetensorsFile, kSafetensorsIndexFile);
  }
  add_shard(single);
}

void HfWeights::add_shard(const fs::path& file) {
  shards_.push_back(std::make_unique<SafetensorsReader>(file));
  for (const auto& info : shards_.back()->tensors()) {
    const auto [it, inserted] = where_.emplace(info.name, shards_.size() - 1);
    if (!inserted) {
      fail("tensor '{}' is stored twice: in {} and in {}", info.name, shards_[it->second]->path().string(),
           file.string());
    }
  }
}

std::vector<std::string> HfWeights::names() const {
  std::vector<std::string> names;
  for (const auto& [name, shard] : where_) names.push_back(name);
  return names;
}

const SafetensorsReader& HfWeights::reader_of(std::string_view name) const {
  const auto found = where_.find(name);
  if (found == where_.end()) fail("{}: no tensor '{}'", description(), name);
  return *shards_[found->second];
}

const SafetensorsTensorInfo& HfWeights::info(std::string_view name) const { return reader_of(name).tensor(name); }
const fs::path& HfWeights::file_of(std::string_view name) const { return reader_of(name).path(); }
std::vector<float> HfWeights::read_floats(std::string_view name) const { return reader_of(name).read_floats(name); }

std::string HfWeights::description() const {
  if (shards_.size() == 1) return shards_.front()->path().string();
  return fmt::format("{} ({} shards)", dir_.string(), shards_.size());
}

std::vector<std::vector<SafetensorsEntry>> plan_shards(const std::vector<SafetensorsEntry>& entries,
                                                       std::uint64_t max_shard_bytes) {
  std::vector<std::vector<SafetensorsEntry>> shards(1);
  std::uint64_t bytes = 0;
  for (const auto& entry : entries) {
    if (!shards.back().empty() && bytes + entry.byte_count() > max_shard_bytes) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back(entry);
    bytes += entry.byte_count();
  }
  return shards;
}

std::string shard_file_name(std::size_t index, std::size_t count) {
  if (count == 1) return std::string(kSingleSafetensorsFile);
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", index + 1, count);
}

std::string safetensors_index_json(const std::vector<std::vector<SafetensorsEntry>>& shards) {
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    for (const auto& entry : shards[i]) {
      weight_map[entry.name] = shard_file_name(i, shards.size());
      total += entry.byte_count();
    }
  }
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = weight_map;
  return index.dump(2) + "\n";
}

}  // namespace kiln::interop
