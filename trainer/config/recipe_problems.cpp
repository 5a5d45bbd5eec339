#include "trainer/config/recipe_problems.hpp"

#include <fmt/format.h>

#include "trainer/config/yaml_path.hpp"
#include "trainer/core/error.hpp"

namespace kiln::config {

RecipeProblems::RecipeProblems(std::string source_name, YAML::Node root,
                               std::map<std::string, std::string> overrides)
    : source_name_(std::move(source_name)), root_(root), overrides_(std::move(overrides)) {}

void RecipeProblems::add(std::string_view key, std::string_view what, std::string_view fix) {
  std::string where = source_name_;
  std::string label(key);
  if (!key.empty()) {
    const auto override_text = overrides_.find(std::string(key));
    if (override_text != overrides_.end()) {
      label += fmt::format(" (from --set {})", override_text->second);
    } else if (const auto position = yaml_position(find_yaml_path(root_, key)); !position.empty()) {
      where += ":" + position;
    }
  }
  std::string line = where + ": ";
  if (!label.empty()) line += label + ": ";
  line += what;
  if (!fix.empty()) line += fmt::format(". Fix: {}", fix);
  lines_.push_back(std::move(line));
}

void RecipeProblems::throw_if_any() const {
  if (lines_.empty()) return;
  if (lines_.size() == 1) throw Error(lines_.front());
  std::string message = fmt::format("recipe {} has {} problems:", source_name_, lines_.size());
  for (const auto& line : lines_) message += "\n  " + line;
  throw Error(message);
}

}  // namespace kiln::config
