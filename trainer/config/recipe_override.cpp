// `--set key.path=value`: edits the parsed document before it is read, so an overridden value
// passes exactly the checks a value written in the file would.
#include <algorithm>

#include "trainer/config/did_you_mean.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/config/recipe_fields.hpp"
#include "trainer/config/yaml_path.hpp"
#include "trainer/core/error.hpp"

namespace kiln::config {

namespace {

void check_override_path(std::string_view assignment, const std::string& path) {
  const auto keys = recipe_key_paths();
  if (std::find(keys.begin(), keys.end(), path) != keys.end()) return;
  const auto sections = recipe_section_paths();
  if (std::find(sections.begin(), sections.end(), path) != sections.end()) {
    fail("--set {}: `{}` is a section, not a key. Fix: set one of its keys, e.g. --set {}.<key>=...",
         assignment, path, path);
  }
  if (const auto suggestion = closest_match(path, keys)) {
    fail("--set {}: unknown key `{}`. Fix: did you mean `{}`?", assignment, path, *suggestion);
  }
  fail("--set {}: unknown key `{}`. Fix: use a key listed in recipes/README.md", assignment, path);
}

}  // namespace

void apply_override(YAML::Node& root, std::string_view assignment) {
  const auto equals = assignment.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    fail("--set {}: expected key.path=value, e.g. --set optim.lr=3e-4", assignment);
  }
  const std::string path(assignment.substr(0, equals));
  check_override_path(assignment, path);
  // Kept as text: the field reader parses it with the field's own type and bounds.
  set_yaml_path(root, path, YAML::Node(std::string(assignment.substr(equals + 1))));
}

}  // namespace kiln::config
