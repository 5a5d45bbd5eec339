#include "trainer/config/yaml_path.hpp"

#include <fmt/format.h>

namespace kiln::config {

std::vector<std::string> split_key_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (true) {
    const std::size_t dot = path.find('.', begin);
    parts.emplace_back(path.substr(begin, dot == std::string_view::npos ? dot : dot - begin));
    if (dot == std::string_view::npos) return parts;
    begin = dot + 1;
  }
}

YAML::Node find_yaml_path(const YAML::Node& root, std::string_view path) {
  YAML::Node current(root);  // a handle to the same node, not a copy of its value
  for (const auto& part : split_key_path(path)) {
    if (!current.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& as_const = current;  // const operator[] never inserts
    YAML::Node next = as_const[part];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    current.reset(next);
  }
  return current;
}

void set_yaml_path(YAML::Node& root, std::string_view path, const YAML::Node& value) {
  if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
  const auto parts = split_key_path(path);
  YAML::Node current(root);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = current[parts[i]];
    if (!next.IsMap()) {
      current[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next.reset(current[parts[i]]);
    }
    current.reset(next);
  }
  current[parts.back()] = value;
}

std::string describe_yaml_node(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  return fmt::format("'{}'", node.Scalar());
}

std::string yaml_position(const YAML::Node& node) {
  if (!node.IsDefined()) return "";
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return "";
  return fmt::format("{}:{}", mark.line + 1, mark.column + 1);
}

}  // namespace kiln::config
