// The resolved recipe as YAML (printed by `kiln train`, saved as run_dir/recipe.yaml) and JSON
// (checkpoint meta.json), and back. Both are written from recipe_fields.hpp and read back
// through the normal loader, so a saved recipe passes the same checks as a hand-written one.
#include <concepts>

#include "trainer/config/recipe.hpp"
#include "trainer/config/recipe_fields.hpp"
#include "trainer/config/recipe_internal.hpp"
#include "trainer/config/recipe_values.hpp"
#include "trainer/config/yaml_path.hpp"
#include "trainer/core/error.hpp"

namespace kiln::config {

namespace {

nlohmann::json* json_slot(nlohmann::json& root, std::string_view path) {
  nlohmann::json* slot = &root;
  for (const auto& part : split_key_path(path)) slot = &(*slot)[part];
  return slot;
}

template <class T>
nlohmann::json json_value(const T& value) {
  if constexpr (RecipeEnum<T>) {
    return std::string(enum_name(value));
  } else {
    return value;
  }
}

// JSON -> YAML document of plain scalars, which the loader then parses by field type.
YAML::Node yaml_from_json(const nlohmann::json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::object: {
      YAML::Node mapping(YAML::NodeType::Map);
      for (const auto& [key, value] : json.items()) mapping[key] = yaml_from_json(value);
      return mapping;
    }
    case nlohmann::json::value_t::null: return YAML::Node(YAML::NodeType::Null);
    case nlohmann::json::value_t::string: return YAML::Node(json.get<std::string>());
    case nlohmann::json::value_t::boolean: return YAML::Node(json.get<bool>() ? "true" : "false");
    case nlohmann::json::value_t::number_float: return YAML::Node(fmt::format("{}", json.get<double>()));
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return YAML::Node(json.dump());
    default: fail("recipe JSON: unexpected value {}", json.dump());
  }
}

}  // namespace

std::string recipe_to_yaml(const Recipe& recipe) {
  YAML::Node root(YAML::NodeType::Map);
  visit_recipe_fields(recipe, [&](std::string_view path, const auto& value, const FieldRule& rule) {
    set_yaml_path(root, path, YAML::Node(value_text(value, rule)));
  });
  YAML::Emitter out;
  out << root;
  return std::string(out.c_str()) + "\n";
}

nlohmann::json recipe_to_json(const Recipe& recipe) {
  nlohmann::json root = nlohmann::json::object();
  visit_recipe_fields(recipe, [&](std::string_view path, const auto& value, const FieldRule&) {
    *json_slot(root, path) = json_value(value);
  });
  return root;
}

Recipe recipe_from_json(const nlohmann::json& json, std::string_view source_name) {
  if (!json.is_object()) fail("{}: recipe JSON must be an object, found {}", source_name, json.type_name());
  return read_recipe(yaml_from_json(json), source_name, {});
}

}  // namespace kiln::config
