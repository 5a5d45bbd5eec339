#pragma once
// Dotted key paths ("model.rope_scaling.factor") over yaml-cpp documents.
//
// yaml-cpp pitfall this hides: assigning one Node to another copies the *value* into the
// target instead of rebinding it, so walking down a tree must use Node::reset. Lookups here
// never create nodes.
#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>
#include <vector>

namespace kiln::config {

std::vector<std::string> split_key_path(std::string_view path);

// The node at path, or an undefined node (IsDefined() == false) when any step is missing or
// is not a mapping.
YAML::Node find_yaml_path(const YAML::Node& root, std::string_view path);

// Stores value at path, creating mappings on the way (a null root becomes a mapping). A step
// that holds a non-mapping value is replaced by a mapping.
void set_yaml_path(YAML::Node& root, std::string_view path, const YAML::Node& value);

// "'fast'", "a mapping", "a list", "nothing": what a message should say was found.
std::string describe_yaml_node(const YAML::Node& node);

// 1-based "line:column" of a node from a parsed file, or "" for nodes built in memory.
std::string yaml_position(const YAML::Node& node);

}  // namespace kiln::config
