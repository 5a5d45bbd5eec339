// Reading tokenizer.json: every unsupported feature and malformed field is refused with a
// message naming the file and the feature or field.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/core/error.hpp"

namespace {

using kiln::tok::Tokenizer;
using Json = nlohmann::json;

// A tiny valid GPT-2 style tokenizer: bytes a, b, c and the merge "a b".
Json minimal() {
  return Json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 5, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
                      "rstrip": false, "normalized": false, "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
              "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
              "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "Ġ": 4, "<|endoftext|>": 5},
              "merges": ["a b"]}
  })");
}

// The message kiln::Error carries when loading `json` (as "t.json"), or "" when it loads.
std::string load_error(const std::string& text) {
  try {
    (void)Tokenizer::from_json(text, "t.json");
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "";
}

std::string load_error(const std::function<void(Json&)>& change) {
  Json json = minimal();
  change(json);
  return load_error(json.dump());
}

void expect_refused(const std::function<void(Json&)>& change, const std::string& named) {
  const auto message = load_error(change);
  EXPECT_NE(message.find("t.json"), std::string::npos) << message;
  EXPECT_NE(message.find(named), std::string::npos) << "expected '" << named << "' in: " << message;
}

TEST(TokenizerJson, MinimalTokenizerLoadsAndEncodes) {
  const auto tokenizer = Tokenizer::from_json(minimal().dump(), "t.json");
  EXPECT_EQ(tokenizer.encode("abc ab"), (std::vector<kiln::tok::TokenId>{3, 2, 4, 3}));
  EXPECT_EQ(tokenizer.encode("ab<|endoftext|>"), (std::vector<kiln::tok::TokenId>{3, 5}));
  EXPECT_EQ(tokenizer.eos_id(), 5U);
}

TEST(TokenizerJson, PairMergesAreAccepted) {
  Json json = minimal();
  json["model"]["merges"] = Json::parse(R"([["a", "b"]])");
  EXPECT_EQ(Tokenizer::from_json(json.dump(), "t.json").encode("ab"), (std::vector<kiln::tok::TokenId>{3}));
}

TEST(TokenizerJson, MalformedJsonNamesTheFile) {
  const auto message = load_error(std::string("{\"model\": [1, 2"));
  EXPECT_NE(message.find("t.json"), std::string::npos);
  EXPECT_NE(message.find("malformed JSON"), std::string::npos);
}

TEST(TokenizerJson, MissingOrMistypedFieldsAreNamed) {
  expect_refused([](Json& j) { j.erase("model"); }, "'model' is missing");
  expect_refused([](Json& j) { j["model"].erase("vocab"); }, "model.vocab");
  expect_refused([](Json& j) { j["model"].erase("merges"); }, "model.merges");
  expect_refused([](Json& j) { j["model"]["vocab"]["a"] = "zero"; }, "model.vocab.a");
  expect_refused([](Json& j) { j["model"]["merges"] = Json::array({"abc"}); }, "model.merges[0]");
  expect_refused([](Json& j) { j["model"]["merges"] = Json::array({42}); }, "model.merges[0]");
  expect_refused([](Json& j) { j["added_tokens"][0].erase("content"); }, "added_tokens[0].content");
  expect_refused([](Json& j) { j["pre_tokenizer"]["use_regex"] = "yes"; }, "pre_tokenizer.use_regex");
}

TEST(TokenizerJson, MergesMustUseVocabularyTokens) {
  expect_refused([](Json& j) { j["model"]["merges"] = Json::array({"a z"}); }, "'z'");
  expect_refused([](Json& j) { j["model"]["merges"] = Json::array({"b c"}); }, "'bc'");
}

TEST(TokenizerJson, UnsupportedFeaturesAreNamed) {
  expect_refused([](Json& j) { j["normalizer"] = {{"type", "NFC"}}; }, "normalizer 'NFC'");
  expect_refused([](Json& j) { j["model"]["type"] = "Unigram"; }, "model type 'Unigram'");
  expect_refused([](Json& j) { j["model"]["type"] = "WordPiece"; }, "model type 'WordPiece'");
  expect_refused([](Json& j) { j["model"]["byte_fallback"] = true; }, "byte_fallback");
  expect_refused([](Json& j) { j["model"]["dropout"] = 0.1; }, "dropout");
  expect_refused([](Json& j) { j["model"]["continuing_subword_prefix"] = "##"; }, "continuing_subword_prefix");
  expect_refused([](Json& j) { j["truncation"] = {{"max_length", 5}}; }, "truncation");
  expect_refused([](Json& j) { j["padding"] = {{"strategy", "BatchLongest"}}; }, "padding");
  expect_refused([](Json& j) { j["version"] = "2.0"; }, "version '2.0'");
  expect_refused([](Json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, "pre-tokenizer 'Whitespace'");
  expect_refused([](Json& j) { j["pre_tokenizer"] = nullptr; }, "pre_tokenizer null");
  expect_refused([](Json& j) { j["post_processor"] = {{"type", "RobertaProcessing"}}; }, "post-processor 'RobertaProcessing'");
  expect_refused([](Json& j) { j["decoder"] = {{"type", "WordPiece"}}; }, "decoder 'WordPiece'");
  expect_refused(
      [](Json& j) {
        j["pre_tokenizer"] = Json::parse(R"({"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed",
                                            "invert": false})");
      },
      "Split behavior 'Removed'");
  expect_refused(
      [](Json& j) {
        j["pre_tokenizer"] = Json::parse(R"({"type": "Sequence", "pretokenizers": [
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
            {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}]})");
      },
      "ByteLevel must be the last");
  expect_refused(
      [](Json& j) {
        j["pre_tokenizer"] = Json::parse(R"({"type": "Split", "pattern": {"Regex": "(unclosed"},
                                            "behavior": "Isolated", "invert": false})");
      },
      "does not compile");
}

TEST(TokenizerJson, MissingFileIsReported) {
  try {
    (void)Tokenizer::load("/nonexistent/tokenizer.json");
    FAIL() << "expected an error";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
  }
}

TEST(TokenizerJson, AddedTokenIdsFollowTokenizersRules) {
  // A new added token gets the next id after the model vocabulary, whatever the file says;
  // one already in the vocabulary keeps its vocabulary id.
  Json json = minimal();
  json["added_tokens"].push_back({{"id", 99}, {"content", "<new>"}, {"special", true}});
  json["added_tokens"].push_back({{"id", 77}, {"content", "ab"}, {"special", false}});
  const auto tokenizer = Tokenizer::from_json(json.dump(), "t.json");
  EXPECT_EQ(tokenizer.token_to_id("<new>"), 6U);
  EXPECT_EQ(tokenizer.token_to_id("ab"), 3U);
  EXPECT_EQ(tokenizer.vocab_size(), 7U);
}

}  // namespace
