// Strict YAML loading (trainer/config/yaml_document): repeated keys, repeated sections and a
// second document are errors with file:line:column and the key path, in recipes loaded from
// text, from files and through --set; recipe paths that are not regular files are refused.
#include "trainer/config/yaml_document.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/config/minimal_recipe.hpp"
#include "tests/core/error_testing.hpp"
#include "tests/dataset/test_datasets.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/core/error.hpp"

namespace {

namespace fs = std::filesystem;
using kiln::testing::error_of;
using kiln::testing::TempDir;

constexpr const char* kMinimal = kiln::testing::kMinimalRecipe;


std::string recipe_error(const std::string& text, std::vector<std::string> overrides = {}) {
  return error_of([&] { kiln::config::recipe_from_yaml_text(text, "recipes/x.yaml", overrides); });
}

TEST(YamlDocument, RepeatedKeyNamesBothPlacesAndThePath) {
  // optim.lr written twice: yaml-cpp would read the first (1.0e-3) and ignore the second.
  const std::string message = recipe_error(std::string(kMinimal) + "  lr: 5.0\n");
  EXPECT_NE(message.find("recipes/x.yaml:15:3: optim.lr: duplicate key (first written at 14:3)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("Fix: keep one of them"), std::string::npos) << message;
}

TEST(YamlDocument, RepeatedSectionIsRefused) {
  const std::string message = recipe_error(std::string(kMinimal) + "train:\n  steps: 5\n");
  EXPECT_NE(message.find("recipes/x.yaml:15:1: train: duplicate key (first written at 10:1)"), std::string::npos)
      << message;
}

TEST(YamlDocument, RepeatedKeyInAFlowMappingDeepDown) {
  const std::string message =
      recipe_error(std::string(kMinimal) + "eval: {every_steps: 2, batches: 3, every_steps: 4}\n");
  EXPECT_NE(message.find("recipes/x.yaml:15:36: eval.every_steps: duplicate key (first written at 15:8)"),
            std::string::npos)
      << message;
}

TEST(YamlDocument, SecondDocumentIsRefused) {
  const std::string message = recipe_error(std::string(kMinimal) + "---\noptim:\n  lr: 5.0\n");
  EXPECT_NE(message.find("recipes/x.yaml:15:1: a second YAML document"), std::string::npos) << message;  // the `---`
  // An empty second document is a second document too.
  EXPECT_NE(recipe_error(std::string(kMinimal) + "---\n").find("a second YAML document"), std::string::npos);
}

TEST(YamlDocument, ALoneCommaEndsWithAnErrorInsteadOfLoopingForever) {
  // yaml-cpp's parser reports an empty document at a lone `,` over and over, so LoadAll never
  // returned (found by the recipe_yaml fuzz target as a timeout). One clear error instead.
  for (const char* text : {",", ",\n", "# recipe\n,\n"}) {
    const std::string message = error_of([&] { kiln::config::load_yaml_document(text, "c.yaml"); });
    EXPECT_NE(message.find("c.yaml:"), std::string::npos) << message;
    EXPECT_NE(message.find("a second YAML document"), std::string::npos) << message;
  }
}

TEST(YamlDocument, OneLeadingDocumentMarkerIsFine) {
  EXPECT_EQ(kiln::config::recipe_from_yaml_text(std::string("---\n") + kMinimal, "x.yaml").optim.lr, 1e-3);
  EXPECT_TRUE(kiln::config::load_yaml_document("", "empty.yaml").IsNull());
}

TEST(YamlDocument, DuplicatesInsideListsAreFound) {
  const std::string message = error_of([] { kiln::config::load_yaml_document("a:\n  - {x: 1, x: 2}\n", "l.yaml"); });
  EXPECT_NE(message.find("l.yaml:2:12: a[0].x: duplicate key (first written at 2:6)"), std::string::npos) << message;
}

TEST(YamlDocument, MalformedYamlKeepsItsPosition) {
  const std::string message = error_of([] { kiln::config::load_yaml_document("a: [1, 2\n", "m.yaml"); });
  EXPECT_NE(message.find("m.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("malformed YAML"), std::string::npos) << message;
}

TEST(YamlDocument, RepeatedOverrideIsRefused) {
  const std::string message = recipe_error(kMinimal, {"optim.lr=1e-3", "train.steps=4", "optim.lr=2e-3"});
  EXPECT_NE(message.find("--set optim.lr=2e-3: `optim.lr` is already set by --set optim.lr=1e-3"), std::string::npos)
      << message;
}

TEST(YamlDocument, RepeatedKeyInARecipeFile) {
  TempDir dir;
  std::ofstream(dir / "r.yaml") << kMinimal << "model:\n  d_model: 32\n";
  const std::string message = error_of([&] { kiln::config::load_recipe(dir / "r.yaml"); });
  EXPECT_NE(message.find((dir / "r.yaml").string() + ":15:1: model: duplicate key (first written at 1:1)"), std::string::npos) << message;
}

TEST(YamlDocument, RecipeThatIsNotARegularFileIsRefusedByName) {
  TempDir dir;
  const fs::path fifo = dir / "fifo.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Opening a FIFO for reading would block until a writer came: it must be refused unopened.
  EXPECT_NE(error_of([&] { kiln::config::load_recipe(fifo); }).find("recipe '" + fifo.string() + "' is a FIFO"),
            std::string::npos);
  EXPECT_NE(error_of([] { kiln::config::load_recipe("/dev/zero"); }).find("is a character device"), std::string::npos);
  EXPECT_NE(error_of([&] { kiln::config::load_recipe(dir.path()); }).find("is a directory"), std::string::npos);
  fs::create_symlink(dir / "loop", dir / "loop");
  EXPECT_NE(error_of([&] { kiln::config::load_recipe(dir / "loop"); }).find("symbolic link loop"), std::string::npos);
}

TEST(YamlDocument, EvalBatchesHasADocumentedMaximum) {
  const std::string message = recipe_error(std::string(kMinimal) + "eval:\n  batches: 1000000000000\n");
  EXPECT_NE(message.find("eval.batches"), std::string::npos) << message;
  EXPECT_NE(message.find("in [1, 100000]"), std::string::npos) << message;
  EXPECT_EQ(kiln::config::recipe_from_yaml_text(std::string(kMinimal) + "eval:\n  batches: 100000\n", "x.yaml")
                .eval.batches,
            100000);
}

}  // namespace
