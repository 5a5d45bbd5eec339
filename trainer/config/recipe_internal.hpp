#pragma once
// Steps of recipe loading shared by the loader, the override and the serialiser files.
#include <map>
#include <string>
#include <string_view>

#include "trainer/config/recipe.hpp"
#include "trainer/config/recipe_problems.hpp"

namespace kiln::config {

// Reads every field (types and bounds), rejects unknown keys, resolves defaults and checks the
// relations between fields. overrides maps key path -> "key=value", for messages only.
Recipe read_recipe(const YAML::Node& root, std::string_view source_name,
                   const std::map<std::string, std::string>& overrides);

// Fills the "auto" values decidable from the recipe alone (see recipe.hpp).
void resolve_recipe_defaults(Recipe& recipe, std::string_view source_name);

// Relations between fields: divisibility, orderings, family-specific keys.
void check_recipe(const Recipe& recipe, RecipeProblems& problems);

}  // namespace kiln::config
