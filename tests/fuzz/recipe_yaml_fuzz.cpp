// A training recipe (trainer/config/recipe_load.*), through recipe_from_yaml_text as
// load_recipe calls it. recipe.hpp promises that loading recipe_to_yaml's output gives back an
// identical Recipe, and checkpoints store recipe_to_json and read it with recipe_from_json:
// both round trips are checked on every accepted recipe.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/refusal_contract.hpp"
#include "trainer/config/recipe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kiln::fuzz::accept_or_refuse([&] {
    const auto recipe = kiln::config::recipe_from_yaml_text(text, "fuzz/recipe.yaml");
    const auto from_yaml = kiln::config::recipe_from_yaml_text(kiln::config::recipe_to_yaml(recipe),
                                                               "fuzz/recipe.yaml");
    kiln::fuzz::require(from_yaml == recipe, "recipe_to_yaml's output loads back as a different recipe");
    const auto from_json = kiln::config::recipe_from_json(kiln::config::recipe_to_json(recipe), "meta.json");
    kiln::fuzz::require(from_json == recipe, "recipe_to_json's output loads back as a different recipe");
  });
  return 0;
}
