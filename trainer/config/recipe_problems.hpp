#pragma once
// Collects everything wrong with a recipe so the user fixes all of it in one go, then throws
// one kiln::Error with a line per problem:
//   recipes/x.yaml:14:7: optim.lr: expected a number, found 'fast'. Fix: write a number > 0
// Values that came from --set are labelled with the override instead of a file position.
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::config {

class RecipeProblems {
 public:
  // root: the document, to find positions of keys; overrides: key path -> "key=value" text.
  RecipeProblems(std::string source_name, YAML::Node root,
                 std::map<std::string, std::string> overrides);

  // key may be empty for problems with the document as a whole.
  void add(std::string_view key, std::string_view what, std::string_view fix);
  bool empty() const { return lines_.empty(); }
  // Throws kiln::Error listing every problem, if any.
  void throw_if_any() const;

 private:
  std::string source_name_;
  YAML::Node root_;
  std::map<std::string, std::string> overrides_;
  std::vector<std::string> lines_;
};

}  // namespace kiln::config
