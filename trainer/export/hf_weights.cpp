#include "trainer/export/hf_weights.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "trainer/core/error.hpp"

namespace kiln::interop {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_index(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail("cannot open {}", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& error) {
    fail("{}: not valid JSON: {}", path.string(), error.what());
  }
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
  if (fs::exists(index_path)) {
    const auto index = read_index(index_path);
    for (const auto& file : shard_files_of(index, index_path)) add_shard(dir / file);
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
  if (!fs::exists(single)) {
    fail("{} holds neither {} nor {} (kiln imports safetensors weights; convert .bin checkpoints with "
         "transformers' save_pretrained(safe_serialization=True))",
         dir.string(), kSingleSafetensorsFile, kSafetensorsIndexFile);
  }
  add_shard(single);
}

void HfWeights::add_shard(const fs::path& file) {
  if (!fs::exists(file)) fail("shard {} is missing", file.string());
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
