#include "trainer/config/recipe.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/config/minimal_recipe.hpp"
#include "trainer/config/recipe_fields.hpp"
#include "trainer/core/error.hpp"

namespace {

using kiln::config::Recipe;
using kiln::config::recipe_from_yaml_text;

const std::filesystem::path kRecipesDir =
    std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "recipes";

constexpr const char* kMinimal = kiln::testing::kMinimalRecipe;

Recipe load_minimal(const std::string& extra = "", std::vector<std::string> overrides = {}) {
  return recipe_from_yaml_text(std::string(kMinimal) + extra, "recipes/mini.yaml", overrides);
}

// The message of the kiln::Error the recipe raises; fails the test when it loads.
std::string load_error(const std::string& yaml, std::vector<std::string> overrides = {}) {
  try {
    recipe_from_yaml_text(yaml, "recipes/mini.yaml", overrides);
  } catch (const kiln::Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "recipe loaded without error:\n" << yaml;
  return "";
}

std::string minimal_with(const std::string& from, const std::string& to) {
  std::string yaml = kMinimal;
  const auto at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return yaml.replace(at, from.size(), to);
}

TEST(Recipe, MinimalRecipeResolvesDefaults) {
  const Recipe recipe = load_minimal();
  EXPECT_EQ(recipe.model.family, kiln::config::ModelFamily::gpt2);
  EXPECT_EQ(recipe.model.n_kv_heads, 4);
  EXPECT_EQ(recipe.model.d_ff, 256);
  EXPECT_EQ(recipe.model.vocab_size, 0);  // from the tokenizer, later
  EXPECT_EQ(recipe.train.seq_len, 64);
  EXPECT_EQ(recipe.train.micro_batch_size, 8);
  EXPECT_EQ(recipe.optim.schedule, kiln::config::LrScheduleKind::cosine);
  EXPECT_EQ(recipe.optim.decay_steps, 100);
  EXPECT_DOUBLE_EQ(recipe.optim.beta2, 0.95);
  EXPECT_EQ(recipe.run.name, "mini");
  EXPECT_EQ(recipe.run.dir, "runs/mini");
  EXPECT_EQ(recipe.checkpoints_dir(), std::filesystem::path("runs/mini/checkpoints"));
  EXPECT_EQ(recipe.parallel.dp, 0);
}

TEST(Recipe, LlamaFeedForwardDefaultFollowsSwiGluRule) {
  const Recipe recipe = load_minimal("", {"model.family=llama", "model.d_model=1024",
                                          "model.n_heads=16"});
  EXPECT_EQ(recipe.model.d_ff, 2816);
}

TEST(Recipe, WsdDecayDefaultsToTwentyPercent) {
  const Recipe recipe = load_minimal("", {"optim.schedule=wsd", "optim.warmup_steps=10"});
  EXPECT_EQ(recipe.optim.decay_steps, 20);
}

TEST(Recipe, ShippedRecipesLoadAndValidate) {
  const Recipe quickstart = kiln::config::load_recipe(kRecipesDir / "quickstart.yaml");
  EXPECT_EQ(quickstart.model.d_model, 128);
  EXPECT_EQ(quickstart.data.train, "runs/quickstart/data/train.h5");
  EXPECT_EQ(quickstart.data.tokenizer, "runs/quickstart/tokenizer.json");
  EXPECT_EQ(quickstart.run.dir, "runs/quickstart");

  const Recipe gpt2 = kiln::config::load_recipe(kRecipesDir / "gpt2-small.yaml");
  EXPECT_EQ(gpt2.model.n_layers, 12);
  EXPECT_EQ(gpt2.model.d_model, 768);
  EXPECT_EQ(gpt2.model.n_heads, 12);
  EXPECT_EQ(gpt2.model.max_seq_len, 1024);
  EXPECT_EQ(gpt2.model.vocab_size, 50257);

  const Recipe llama = kiln::config::load_recipe(kRecipesDir / "llama-small.yaml");
  EXPECT_EQ(llama.model.family, kiln::config::ModelFamily::llama);
  EXPECT_LT(llama.model.n_kv_heads, llama.model.n_heads);
  EXPECT_DOUBLE_EQ(llama.model.rope_theta, 500000.0);
  EXPECT_EQ(llama.model.rope_scaling.type, kiln::config::RopeScalingType::llama3);
}

TEST(Recipe, ReadmeDocumentsEveryKey) {
  std::ifstream in(kRecipesDir / "README.md");
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty());
  for (const auto& key : kiln::config::recipe_key_paths()) {
    EXPECT_NE(text.str().find("`" + key + "`"), std::string::npos) << key << " is undocumented";
  }
}

TEST(Recipe, UnknownKeyGetsSuggestionFileAndLine) {
  const auto message = load_error(minimal_with("  lr: 1.0e-3", "  lr: 1.0e-3\n  lrr: 2"));
  EXPECT_NE(message.find("recipes/mini.yaml:15:"), std::string::npos) << message;
  EXPECT_NE(message.find("optim.lrr: unknown key"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean `optim.lr`?"), std::string::npos) << message;
}

TEST(Recipe, KeyInWrongSectionSuggestsTheRightOne) {
  const auto message = load_error(minimal_with("  max_seq_len: 64", "  max_seq_len: 64\n  warmup_steps: 5"));
  EXPECT_NE(message.find("model.warmup_steps: unknown key"), std::string::npos) << message;
  EXPECT_NE(message.find("`optim.warmup_steps`"), std::string::npos) << message;
}

TEST(Recipe, WrongTypesNameKeyFoundValueAndFix) {
  auto message = load_error(minimal_with("lr: 1.0e-3", "lr: fast"));
  EXPECT_NE(message.find("recipes/mini.yaml:14:7: optim.lr: expected a number > 0, found 'fast'. "
                         "Fix: write a number > 0"),
            std::string::npos)
      << message;
  message = load_error(minimal_with("steps: 100", "steps: -5"));
  EXPECT_NE(message.find("train.steps: must be >= 1, found -5"), std::string::npos) << message;
  message = load_error(minimal_with("steps: 100", "steps: 3.5"));
  EXPECT_NE(message.find("train.steps: expected a whole number >= 1, found '3.5'"), std::string::npos)
      << message;
  message = load_error(minimal_with("d_model: 64", "d_model: {a: 1}"));
  EXPECT_NE(message.find("model.d_model: expected a whole number >= 1, found a mapping"),
            std::string::npos)
      << message;
  message = load_error(minimal_with("\ntrain:\n", "\ntrain:\n  seed: [1, 2]\n"));
  EXPECT_NE(message.find("train.seed: expected a whole number >= 0, found a list"), std::string::npos)
      << message;
  message = load_error(std::string(kMinimal) + "log:\n  every_steps: 1\nrun:\n  resume: maybe\n");
  EXPECT_NE(message.find("run.resume: expected true or false, found 'maybe'"), std::string::npos)
      << message;
}

// Paths and names must survive recipe.yaml and meta.json unchanged: an invalid UTF-8 byte would
// come back as U+FFFD (a fuzz finding), a control character is never part of a sane path.
TEST(Recipe, StringsWithInvalidUtf8OrControlCharactersAreRefused) {
  auto message = load_error(minimal_with("train: train.h5", "train: train.h5\n  val: \"runs/va\\x1cl.h5\""));
  EXPECT_NE(message.find("data.val: found an invalid byte or control character 0x1c at byte 7. "
                         "Fix: write a one-line UTF-8 string"),
            std::string::npos)
      << message;
  message = load_error(std::string(kMinimal), {"data.val=runs/\xff.h5"});
  EXPECT_NE(message.find("): found an invalid byte or control character 0xff at byte 5"),
            std::string::npos)
      << message;
  EXPECT_EQ(load_minimal("", {"data.val=runs/données/val.h5"}).data.val, "runs/données/val.h5");
}

TEST(Recipe, NumbersMayUseExponentNotation) {
  const Recipe recipe = load_minimal("", {"train.steps=1e4", "optim.lr=+3e-4"});
  EXPECT_EQ(recipe.train.steps, 10000);
  EXPECT_DOUBLE_EQ(recipe.optim.lr, 3e-4);
}

TEST(Recipe, ZeroLearningRateIsRefused) {
  const auto message = load_error(minimal_with("lr: 1.0e-3", "lr: 0"));
  EXPECT_NE(message.find("optim.lr: must be > 0, found 0"), std::string::npos) << message;
}

TEST(Recipe, UnknownEnumValuesSuggestTheNearestName) {
  auto message = load_error(minimal_with("family: gpt2", "family: gtp2"));
  EXPECT_NE(message.find("model.family: expected one of gpt2, llama, found 'gtp2' (did you mean gpt2?)"),
            std::string::npos)
      << message;
  message = load_error(minimal_with("lr: 1.0e-3", "lr: 1.0e-3\n  schedule: cosin"));
  EXPECT_NE(message.find("optim.schedule: expected one of constant, cosine, linear, wsd"),
            std::string::npos)
      << message;
}

TEST(Recipe, ImpossibleShapesAreRefusedWithTheKeyToChange) {
  struct Case {
    std::vector<std::string> overrides;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"model.n_kv_heads=3"}, "model.n_kv_heads (from --set model.n_kv_heads=3): model.n_heads = 4 is not a multiple of n_kv_heads = 3"},
      {{"model.d_model=66"}, "model.d_model (from --set model.d_model=66): d_model = 66 is not a multiple of n_heads = 4"},
      {{"train.micro_batch_size=3"}, "batch_size = 8 is not a multiple of micro_batch_size = 3"},
      {{"train.seq_len=128"}, "train.seq_len (from --set train.seq_len=128): 128 exceeds model.max_seq_len = 64"},
      {{"optim.warmup_steps=101"}, "optim.warmup_steps (from --set optim.warmup_steps=101): 101 is longer than train.steps = 100"},
      {{"optim.min_lr=0.1"}, "optim.min_lr (from --set optim.min_lr=0.1): 0.1 is above optim.lr = 0.001"},
      {{"optim.schedule=wsd", "optim.warmup_steps=50", "optim.decay_steps=60"}, "warmup (50) + decay (60) exceed train.steps = 100"},
      {{"parallel.tp=3"}, "parallel.tp (from --set parallel.tp=3): 3 does not divide model.n_heads = 4"},
      {{"parallel.pp=3"}, "3 does not divide model.n_layers = 2"},
      {{"parallel.dp=3"}, "8 is not a multiple of parallel.dp * micro_batch_size = 3 * 8"},
      {{"model.rope_scaling.type=llama3"}, "gpt2 uses learned positions, not RoPE"},
      {{"eval.every_steps=10"}, "evaluation is scheduled but data.val is empty"},
      {{"model.family=llama", "model.d_model=36"}, "head_dim = d_model / n_heads = 9 is odd"},
  };
  for (const auto& c : cases) {
    const auto message = load_error(kMinimal, c.overrides);
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
    EXPECT_NE(message.find("Fix: "), std::string::npos) << message;
  }
}

TEST(Recipe, EveryProblemIsReportedAtOnce) {
  std::string yaml = minimal_with("lr: 1.0e-3", "lr: fast\n  betta1: 0.9");
  yaml = yaml.replace(yaml.find("steps: 100"), 10, "steps: -1");
  const auto message = load_error(yaml);
  EXPECT_NE(message.find("has 3 problems"), std::string::npos) << message;
  EXPECT_NE(message.find("optim.lr"), std::string::npos);
  EXPECT_NE(message.find("optim.betta1"), std::string::npos);
  EXPECT_NE(message.find("train.steps"), std::string::npos);
}

TEST(Recipe, MissingRequiredKeysSayWhereToAddThem) {
  std::string yaml = kMinimal;
  yaml.erase(yaml.find("  train: train.h5\n"), 18);
  const auto message = load_error(yaml);
  EXPECT_NE(message.find("data.train: required key is missing. Fix: add `train: <a one-line UTF-8 string>` under `data:`"),
            std::string::npos)
      << message;
}

TEST(Recipe, SectionGivenAScalarIsRefused) {
  const auto message = load_error(std::string(kMinimal) + "parallel: 4\n");
  EXPECT_NE(message.find("parallel: is a section, found '4'"), std::string::npos) << message;
}

TEST(Recipe, DocumentMustBeAMappingOfSections) {
  auto message = load_error("- model\n- data\n");
  EXPECT_NE(message.find("recipes/mini.yaml: expected a mapping of sections, found a list"),
            std::string::npos)
      << message;
  message = load_error("");
  EXPECT_NE(message.find("model.family: required key is missing"), std::string::npos) << message;
  EXPECT_NE(message.find("optim.lr: required key is missing"), std::string::npos) << message;
}

TEST(Recipe, MalformedYamlReportsLineAndColumn) {
  const auto message = load_error("model:\n  family: gpt2\n  d_model: [64, 128\n");
  EXPECT_NE(message.find("recipes/mini.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("malformed YAML"), std::string::npos) << message;
  EXPECT_NE(message.find(":4:"), std::string::npos) << message;  // where the parser gave up
}

TEST(Recipe, MissingFileIsNamed) {
  try {
    kiln::config::load_recipe("/nonexistent/dir/nope.yaml");
    FAIL() << "loaded a missing file";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("'/nonexistent/dir/nope.yaml' not found"), std::string::npos)
        << error.what();
  }
}

TEST(Recipe, OverridesReplaceAndCreateValues) {
  const Recipe recipe = load_minimal("", {"optim.lr=3e-4", "model.family=llama",
                                          "model.rope_scaling.type=llama3", "data.val=val.h5",
                                          "parallel.dp=auto", "run.dir=/tmp/run"});
  EXPECT_DOUBLE_EQ(recipe.optim.lr, 3e-4);
  EXPECT_EQ(recipe.model.rope_scaling.type, kiln::config::RopeScalingType::llama3);
  EXPECT_EQ(recipe.data.val, "val.h5");
  EXPECT_EQ(recipe.run.dir, "/tmp/run");
}

TEST(Recipe, OverridesOfUnknownPathsAreRefusedByName) {
  auto message = load_error(kMinimal, {"optim.lrate=1"});
  EXPECT_NE(message.find("--set optim.lrate=1: unknown key `optim.lrate`. Fix: did you mean `optim.lr`?"),
            std::string::npos)
      << message;
  message = load_error(kMinimal, {"model=3"});
  EXPECT_NE(message.find("`model` is a section, not a key"), std::string::npos) << message;
  message = load_error(kMinimal, {"optim.lr"});
  EXPECT_NE(message.find("expected key.path=value"), std::string::npos) << message;
  message = load_error(kMinimal, {"optim.lr=fast"});
  EXPECT_NE(message.find("optim.lr (from --set optim.lr=fast): expected a number > 0, found 'fast'"),
            std::string::npos)
      << message;
}

TEST(Recipe, ApplyOverrideEditsTheDocument) {
  YAML::Node root = YAML::Load(kMinimal);
  kiln::config::apply_override(root, "model.rope_scaling.factor=16");
  kiln::config::apply_override(root, "train.steps=7");
  EXPECT_EQ(root["model"]["rope_scaling"]["factor"].Scalar(), "16");
  EXPECT_EQ(root["train"]["steps"].Scalar(), "7");
  EXPECT_EQ(root["model"]["d_model"].Scalar(), "64");  // siblings untouched
  EXPECT_THROW(kiln::config::apply_override(root, "train.stepz=7"), kiln::Error);
}

TEST(Recipe, YamlAndJsonRoundTripExactly) {
  for (const char* name : {"quickstart.yaml", "gpt2-small.yaml", "llama-small.yaml"}) {
    const Recipe original = kiln::config::load_recipe(kRecipesDir / name,
                                                      std::vector<std::string>{"optim.eps=1.2345678901234e-8"});
    const std::string yaml = kiln::config::recipe_to_yaml(original);
    EXPECT_EQ(recipe_from_yaml_text(yaml, "saved.yaml"), original) << yaml;
    const auto json = kiln::config::recipe_to_json(original);
    EXPECT_EQ(kiln::config::recipe_from_json(json, "meta.json"), original) << json.dump(2);
    EXPECT_EQ(kiln::config::recipe_from_json(nlohmann::json::parse(json.dump()), "meta.json"), original);
  }
}

TEST(Recipe, SerialisedFormIsReadable) {
  const std::string yaml = kiln::config::recipe_to_yaml(load_minimal());
  EXPECT_NE(yaml.find("model:\n  family: gpt2\n  d_model: 64\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("vocab_size: auto"), std::string::npos) << yaml;
  const auto json = kiln::config::recipe_to_json(load_minimal());
  EXPECT_EQ(json["optim"]["schedule"], "cosine");
  EXPECT_EQ(json["train"]["steps"], 100);
  EXPECT_EQ(json["model"]["rope_scaling"]["type"], "none");
}

TEST(Recipe, VocabularyResolutionAndPadding) {
  Recipe recipe = load_minimal();
  kiln::config::resolve_vocab_size(recipe, 1000, "t.json");
  EXPECT_EQ(recipe.model.vocab_size, 1000);
  EXPECT_EQ(kiln::config::padded_vocab_size(recipe.model, 1), 1024);
  EXPECT_EQ(kiln::config::padded_vocab_size(recipe.model, 3), 1152);
  recipe.model.vocab_size = 50257;
  EXPECT_EQ(kiln::config::padded_vocab_size(recipe.model, 1), 50304);
  recipe.model.vocab_size = 900;
  EXPECT_THROW(kiln::config::resolve_vocab_size(recipe, 1000, "t.json"), kiln::Error);
}

}  // namespace
