#pragma once
// What a checkpoint records besides tensors (DESIGN.md §9), stored as meta.json.
// The loader, RNG and schedule states are opaque JSON owned by their components, so this file
// never needs to change when one of them does.
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "trainer/config/parallel_layout.hpp"

namespace kiln::checkpoint {

struct CheckpointMeta {
  std::int64_t step = 0;         // optimizer steps completed
  std::int64_t tokens_seen = 0;  // training tokens consumed, all ranks together
  nlohmann::json recipe = nlohmann::json::object();    // config::recipe_to_json of the run
  config::ParallelLayout layout;                       // the layout that wrote the pieces
  nlohmann::json loader = nlohmann::json::object();    // data loader position (epoch, ...)
  nlohmann::json rng = nlohmann::json::object();       // RNG states (dropout, sampling, ...)
  nlohmann::json schedule = nlohmann::json::object();  // optim::LrSchedule::to_json
  nlohmann::json extra = nlohmann::json::object();     // anything else the trainer keeps
  // Filled by the writer and checked by verify: file name -> 16 hex digits of XXH3-64.
  std::map<std::string, std::string> checksums;
  std::string created_by;  // "kiln 0.1.0"
};

// meta.json holds the recipe and a checksum per rank file: kilobytes. The bound keeps a
// damaged or hostile file from being read into memory whole.
inline constexpr std::uint64_t kMaxMetaBytes = 64u << 20;

// meta.json of a step directory, read (a regular file of at most kMaxMetaBytes) and parsed.
// Throws kiln::Error naming the file when it is unreadable, malformed or incomplete.
CheckpointMeta read_meta_file(const std::filesystem::path& path);

// The full meta.json document, with format name and version.
nlohmann::json meta_to_json(const CheckpointMeta& meta);
// Throws kiln::Error naming source when a field is missing or has the wrong type.
CheckpointMeta meta_from_json(const nlohmann::json& json, const std::filesystem::path& source);

}  // namespace kiln::checkpoint
