#pragma once
// The curate recipe's schema: every key path ("gopher_quality.min_doc_words"), what it
// expects and how it is stored in CurateOptions. The YAML reader (the CLI) walks a file,
// looks each key up here (unknown keys get a did-you-mean), and applies the values; so the
// file, --set and the documentation in recipes/CURATE.md all speak the same names.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "data/curate/curate_options.hpp"

namespace kiln::curate {

struct RecipeValue {
  std::string scalar;
  std::vector<std::string> list;
  bool is_list = false;
};

struct RecipeField {
  std::string path;
  std::string expected;  // "a number in [0, 1]", for messages
  // Stores the value; returns "" or what was wrong with it.
  std::function<std::string(CurateOptions&, const RecipeValue&)> apply;
};

const std::vector<RecipeField>& curate_recipe_fields();
std::vector<std::string> curate_recipe_paths();
std::vector<std::string> curate_recipe_sections();
const RecipeField* find_curate_field(std::string_view path);

// Checks that span fields (an output directory, inputs, eval sets when decontamination is
// on, ...). Returns one line per problem, "key: what. Fix: how".
std::vector<std::string> check_curate_options(const CurateOptions& options);

}  // namespace kiln::curate
