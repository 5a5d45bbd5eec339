// kiln's Split pre-tokenizer against what the `tokenizers` library gives for every pattern,
// behavior and invert of tests/fixtures/tokenizer/split_goldens.json (made by
// scripts/fixtures/make_split_fixtures.py): the pieces of each input, and the ids of the
// gpt2.json fixture with Sequence[Split(...), ByteLevel(use_regex=false)] as pre-tokenizer.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizer/pre_tokenizer.hpp"
#include "data/tokenizer/regex.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "trainer/core/error.hpp"

namespace {

using kiln::tok::PreTokenizer;
using kiln::tok::PreTokenizerStep;
using kiln::tok::TokenId;
using kiln::tok::Tokenizer;
using Json = nlohmann::json;

const std::string kDir = std::string(KILN_FIXTURES_DIR) + "/tokenizer/";

Json load_json(const std::string& name) {
  std::ifstream in(kDir + name);
  return Json::parse(in);
}

const Json& goldens() {
  static const Json json = load_json("split_goldens.json");
  return json;
}

std::string describe(const Json& split) { return split.dump(); }

PreTokenizer split_then_byte_level(const Json& split) {
  const Json& pattern = split["pattern"];
  const bool is_regex = pattern.contains("Regex");
  const auto behavior = kiln::tok::split_behavior_named(split["behavior"].get<std::string>());
  EXPECT_TRUE(behavior) << describe(split);
  std::vector<PreTokenizerStep> steps;
  steps.push_back(PreTokenizerStep::split(pattern[is_regex ? "Regex" : "String"].get<std::string>(), is_regex,
                                          *behavior, split["invert"].get<bool>()));
  steps.push_back(PreTokenizerStep::byte_level(false, true, false));
  return PreTokenizer(std::move(steps), true);
}

std::vector<std::string> pieces_of(const PreTokenizer& pre, const std::string& text) {
  std::vector<std::string> pieces;
  pre.for_each_word(text, [&](std::string_view piece) { pieces.emplace_back(piece); });
  return pieces;
}

TEST(SplitGolden, FixtureCoversTheGrid) {
  // Every behavior with and without invert, both pattern kinds, the empty-match patterns.
  std::set<std::string> behaviors;
  std::set<bool> inverts;
  std::set<std::string> kinds;
  bool has_empty_regex = false;
  for (const auto& golden : goldens()["cases"]) {
    behaviors.insert(golden["split"]["behavior"].get<std::string>());
    inverts.insert(golden["split"]["invert"].get<bool>());
    kinds.insert(golden["split"]["pattern"].begin().key());
    has_empty_regex |= golden["split"]["pattern"].value("Regex", "x") == "";
  }
  EXPECT_EQ(behaviors.size(), 5U);
  EXPECT_EQ(inverts.size(), 2U);
  EXPECT_EQ(kinds.size(), 2U);
  EXPECT_TRUE(has_empty_regex);
  EXPECT_GE(goldens()["inputs"].size(), 20U);
}

TEST(SplitGolden, PiecesMatchTokenizers) {
  const auto inputs = goldens()["inputs"].get<std::vector<std::string>>();
  std::size_t checked = 0;
  for (const auto& golden : goldens()["cases"]) {
    const PreTokenizer pre = split_then_byte_level(golden["split"]);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto expected = golden["pieces"][i].get<std::vector<std::string>>();
      EXPECT_EQ(pieces_of(pre, inputs[i]), expected)
          << describe(golden["split"]) << " on " << Json(inputs[i]).dump();
      ++checked;
    }
  }
  EXPECT_GT(checked, 10000U);
}

Json with_split(Json base, const Json& split) {
  const Json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", false}};
  base["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", Json::array({split, byte_level})}};
  return base;
}

TEST(SplitGolden, IdsMatchTokenizersThroughTokenizerJson) {
  // Through the file format, so behavior and invert are read from it too.
  const Json base = load_json(goldens()["base_tokenizer"].get<std::string>());
  const auto inputs = goldens()["inputs"].get<std::vector<std::string>>();
  for (const auto& golden : goldens()["cases"]) {
    const auto tokenizer = Tokenizer::from_json(with_split(base, golden["split"]).dump(), "split golden");
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto expected = golden["ids"][i].get<std::vector<TokenId>>();
      EXPECT_EQ(tokenizer.encode(inputs[i]), expected) << describe(golden["split"]) << " on " << Json(inputs[i]).dump();
    }
  }
}

TEST(SplitGolden, BehaviorAndInvertAreWrittenBack) {
  const Json base = load_json(goldens()["base_tokenizer"].get<std::string>());
  for (const char* behavior : {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"}) {
    for (const bool invert : {false, true}) {
      const Json split = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", behavior}, {"invert", invert}};
      const auto written = Json::parse(Tokenizer::from_json(with_split(base, split).dump(), "split").to_json());
      EXPECT_EQ(written["pre_tokenizer"]["pretokenizers"][0], split);
    }
  }
}

TEST(SplitGolden, GraphemeClustersAreRefusedRatherThanGuessed) {
  // PCRE2 makes one cluster of "😀😀" where Oniguruma makes two.
  const Json split = {{"type", "Split"}, {"pattern", {{"Regex", "\\X"}}}, {"behavior", "Isolated"}, {"invert", false}};
  try {
    (void)Tokenizer::from_json(with_split(load_json("split_base.json"), split).dump(), "t.json");
    FAIL() << "\\X was accepted";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("\\X (a grapheme cluster) is not supported"), std::string::npos)
        << error.what();
  }
}

TEST(SplitGolden, OnigurumaOptionsAreTranslated) {
  // Oniguruma's (?m) is dot-all (PCRE2's (?s)); its (?s) does not exist.
  EXPECT_EQ(kiln::tok::translate_oniguruma("(?m:.)|(?i-m)a"), "(?s:.)|(?i-s)a");
  EXPECT_THROW((void)kiln::tok::translate_oniguruma("(?s)."), kiln::Error);
  EXPECT_EQ(kiln::tok::translate_oniguruma("(?:a)(?=b)(?<n>c)"), "(?:a)(?=b)(?<n>c)");
}

}  // namespace
