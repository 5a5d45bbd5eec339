#include "trainer/config/recipe_fields.hpp"

#include <algorithm>

namespace kiln::config {

std::vector<std::string> recipe_key_paths() {
  std::vector<std::string> paths;
  const Recipe defaults;
  visit_recipe_fields(defaults, [&](std::string_view path, const auto&, const FieldRule&) {
    paths.emplace_back(path);
  });
  return paths;
}

std::vector<std::string> recipe_section_paths() {
  std::vector<std::string> sections;
  for (const auto& path : recipe_key_paths()) {
    for (std::size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) {
      std::string section = path.substr(0, dot);
      if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
        sections.push_back(std::move(section));
      }
    }
  }
  return sections;
}

}  // namespace kiln::config
