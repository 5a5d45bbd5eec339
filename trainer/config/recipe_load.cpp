// Loading a recipe: YAML text -> document -> overrides -> typed fields -> resolved, checked Recipe.
#include <algorithm>

#include "trainer/config/did_you_mean.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/config/recipe_fields.hpp"
#include "trainer/config/recipe_internal.hpp"
#include "trainer/config/recipe_values.hpp"
#include "trainer/config/yaml_document.hpp"
#include "trainer/config/yaml_path.hpp"
#include "trainer/core/error.hpp"

namespace kiln::config {

namespace {

std::string section_of(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string() : std::string(path.substr(0, dot));
}

std::string leaf_of(std::string_view path) {
  const auto dot = path.rfind('.');
  return std::string(dot == std::string_view::npos ? path : path.substr(dot + 1));
}

// Reads each field from the document, reporting type and bound violations.
class FieldReader {
 public:
  FieldReader(const YAML::Node& root, RecipeProblems& problems) : root_(root), problems_(problems) {}

  template <class T>
  void operator()(std::string_view path, T& value, const FieldRule& rule) {
    const YAML::Node node = find_yaml_path(root_, path);
    if (!node.IsDefined() || node.IsNull()) {
      if (rule.required) report_missing<T>(path, rule);
      return;
    }
    const std::string fix = fmt::format("write {}", expected_value<T>(rule));
    if (!node.IsScalar()) {
      problems_.add(path, fmt::format("expected {}, found {}", expected_value<T>(rule),
                                      describe_yaml_node(node)), fix);
      return;
    }
    if (auto error = parse_value(node.Scalar(), value, rule)) problems_.add(path, *error, fix);
  }

 private:
  template <class T>
  void report_missing(std::string_view path, const FieldRule& rule) {
    problems_.add(path, "required key is missing",
                  fmt::format("add `{}: <{}>` under `{}:`", leaf_of(path), expected_value<T>(rule),
                              section_of(path)));
  }

  const YAML::Node& root_;
  RecipeProblems& problems_;
};

class UnknownKeyFinder {
 public:
  explicit UnknownKeyFinder(RecipeProblems& problems)
      : problems_(problems), keys_(recipe_key_paths()), sections_(recipe_section_paths()) {
    known_ = keys_;
    known_.insert(known_.end(), sections_.begin(), sections_.end());
  }

  void check_document(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) return;
    if (!root.IsMap()) {
      problems_.add("", fmt::format("expected a mapping of sections, found {}",
                                    describe_yaml_node(root)),
                    "start the file with sections such as `model:`, `data:`, `train:`, `optim:`");
      return;
    }
    check_mapping(root, "");
  }

 private:
  bool is_key(const std::string& path) const { return contains(keys_, path); }
  bool is_section(const std::string& path) const { return contains(sections_, path); }
  static bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  }

  void check_mapping(const YAML::Node& mapping, const std::string& prefix) {
    for (const auto& entry : mapping) {
      if (!entry.first.IsScalar()) {
        problems_.add(prefix, "a key is not a plain name", "use plain names as keys");
        continue;
      }
      const std::string path =
          prefix.empty() ? entry.first.Scalar() : prefix + "." + entry.first.Scalar();
      if (is_key(path)) continue;  // its value is checked by FieldReader
      if (is_section(path)) {
        check_section(entry.second, path);
      } else {
        report_unknown(path);
      }
    }
  }

  void check_section(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) return check_mapping(node, path);
    if (node.IsNull()) return;
    problems_.add(path, fmt::format("is a section, found {}", describe_yaml_node(node)),
                  fmt::format("write its keys indented under `{}:`", leaf_of(path)));
  }

  void report_unknown(const std::string& path) {
    std::string fix = "remove it";
    if (const auto suggestion = suggest(path)) {
      fix = fmt::format("did you mean `{}`?", *suggestion);
    } else if (const auto section = section_of(path); section.empty() || is_section(section)) {
      fix = fmt::format("remove it; keys of `{}` are listed in recipes/README.md",
                        section.empty() ? "the recipe" : section);
    }
    problems_.add(path, "unknown key", fix);
  }

  // A misspelt key ("optim.lrr"), or a right key in the wrong section ("model.lr").
  std::optional<std::string> suggest(const std::string& path) const {
    if (auto close = closest_match(path, known_)) return close;
    const std::string leaf = leaf_of(path);
    for (const auto& key : keys_) {
      if (leaf_of(key) == leaf) return key;
    }
    return std::nullopt;
  }

  RecipeProblems& problems_;
  std::vector<std::string> keys_;
  std::vector<std::string> sections_;
  std::vector<std::string> known_;
};

// "a.b=c" -> {"a.b", "c"}; the source of --set labels in messages.
std::map<std::string, std::string> override_sources(const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> sources;
  for (const auto& assignment : overrides) {
    const auto equals = assignment.find('=');
    if (equals != std::string::npos) sources[assignment.substr(0, equals)] = assignment;
  }
  return sources;
}

// A missing recipe gets a hint where the shipped ones are; anything else that is not a
// readable regular file is refused by kiln::read_text_file, by name.
YAML::Node load_recipe_file(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, error))) {
    fail("recipe file '{}' not found. Fix: check the path (shipped recipes are in recipes/, "
         "e.g. recipes/quickstart.yaml)",
         path.string());
  }
  return load_yaml_file(path, "recipe");
}

// --set key=value, each key once: a second assignment would silently win over the first.
void refuse_repeated_overrides(std::span<const std::string> overrides) {
  std::map<std::string, std::string> first;
  for (const auto& assignment : overrides) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos) continue;  // apply_override names the malformed one
    const auto [earlier, inserted] = first.emplace(assignment.substr(0, equals), assignment);
    if (!inserted) {
      fail("--set {}: `{}` is already set by --set {}. Fix: pass each key once", assignment, earlier->first,
           earlier->second);
    }
  }
}

Recipe recipe_from_document(YAML::Node root, std::string_view source_name, std::span<const std::string> overrides) {
  refuse_repeated_overrides(overrides);
  std::vector<std::string> applied(overrides.begin(), overrides.end());
  for (const auto& assignment : applied) {
    try {
      apply_override(root, assignment);
    } catch (const Error& error) {
      fail("{}: {}", source_name, error.what());
    }
  }
  return read_recipe(root, source_name, override_sources(applied));
}

}  // namespace

Recipe read_recipe(const YAML::Node& root, std::string_view source_name,
                   const std::map<std::string, std::string>& overrides) {
  RecipeProblems problems(std::string(source_name), root, overrides);
  UnknownKeyFinder(problems).check_document(root);
  if (root.IsDefined() && !root.IsNull() && !root.IsMap()) problems.throw_if_any();
  // An empty file reads as an empty mapping, so each required key is reported missing.
  const YAML::Node document = root.IsMap() ? root : YAML::Node(YAML::NodeType::Map);
  Recipe recipe;
  visit_recipe_fields(recipe, FieldReader(document, problems));
  problems.throw_if_any();  // relations between fields only make sense once each one is valid
  resolve_recipe_defaults(recipe, source_name);
  check_recipe(recipe, problems);
  problems.throw_if_any();
  return recipe;
}

Recipe recipe_from_yaml(const YAML::Node& root, std::string_view source_name) {
  return read_recipe(root, source_name, {});
}

Recipe recipe_from_yaml_text(std::string_view yaml_text, std::string_view source_name,
                             std::span<const std::string> overrides) {
  return recipe_from_document(load_yaml_document(yaml_text, source_name), source_name, overrides);
}

Recipe load_recipe(const std::filesystem::path& path, std::span<const std::string> overrides) {
  return recipe_from_document(load_recipe_file(path), path.string(), overrides);
}

}  // namespace kiln::config
