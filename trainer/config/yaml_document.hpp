#pragma once
// One YAML document, loaded strictly. yaml-cpp accepts things a recipe must not contain:
//   - a key written twice in one mapping (yaml-cpp keeps both entries and lookups see only the
//     first, so the second, often the one the user edited, is silently ignored);
//   - a second document after `---` (YAML::Load reads the first and drops the rest).
// Both are refused here with file:line:column and the key path, in the recipe errors' style:
//   recipes/x.yaml:9:3: optim.lr: duplicate key (first written at 4:3). Fix: keep one of them
// Training recipes (trainer/config/recipe_load.cpp), curate recipes and their --set values
// (trainer/cli/curate_command.cpp) all load through these functions.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <string_view>

namespace kiln::config {

// The largest recipe file kiln reads (recipes are a few kilobytes).
inline constexpr std::uint64_t kMaxRecipeBytes = 16u << 20;

// Parses `text` (named `source_name` in messages: a file path, or "--set key=value"). An empty
// text is a null node. Throws kiln::Error for malformed YAML, a second document or a repeated
// key anywhere in the tree.
YAML::Node load_yaml_document(std::string_view text, std::string_view source_name);

// The file's text through kiln::read_text_file (a directory, FIFO, device or symlink loop is
// refused by name; `role` says what the file is for, e.g. "recipe"), then load_yaml_document.
YAML::Node load_yaml_file(const std::filesystem::path& path, std::string_view role);

}  // namespace kiln::config
