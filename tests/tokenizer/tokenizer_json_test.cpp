// Reading tokenizer.json: every unsupported feature and malformed field is refused with a
// message naming the file and the feature or field.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
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

Json added_token(std::uint64_t id, const std::string& content, bool special) {
  return {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},   {"normalized", !special}, {"special", special}};
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
  json["added_tokens"].push_back(added_token(99, "<new>", true));
  json["added_tokens"].push_back(added_token(77, "ab", false));
  const auto tokenizer = Tokenizer::from_json(json.dump(), "t.json");
  EXPECT_EQ(tokenizer.token_to_id("<new>"), 6U);
  EXPECT_EQ(tokenizer.token_to_id("ab"), 3U);
  EXPECT_EQ(tokenizer.vocab_size(), 7U);
}

// ---- what `tokenizers` refuses (issue 10) ----------------------------------------------------

TEST(TokenizerJson, ByteOrderMarkIsRefused) {
  // nlohmann-json would skip it; serde_json (and so `tokenizers`) refuses the file.
  const auto message = load_error("\xEF\xBB\xBF" + minimal().dump());
  EXPECT_NE(message.find("t.json"), std::string::npos) << message;
  EXPECT_NE(message.find("byte order mark"), std::string::npos) << message;
}

TEST(TokenizerJson, DuplicateKeysAreRefusedWithTheirField) {
  const std::string text = minimal().dump();
  const auto with = [&](const std::string& anchor, const std::string& insert) {
    std::string changed = text;
    const auto at = changed.find(anchor);
    EXPECT_NE(at, std::string::npos) << anchor;
    return changed.insert(at + anchor.size(), insert);
  };
  // In an added token, as serde refuses it; and everywhere else, where `tokenizers` would
  // silently take the last value.
  auto message = load_error(with(R"({"content":"<|endoftext|>",)", R"("content":"x",)"));
  EXPECT_NE(message.find("field 'added_tokens[0]' has the key 'content' twice"), std::string::npos) << message;
  message = load_error(with(R"("vocab":{)", R"("b":7,)"));
  EXPECT_NE(message.find("field 'model.vocab' has the key 'b' twice"), std::string::npos) << message;
  message = load_error(with("{", R"("model":null,)"));
  EXPECT_NE(message.find("field '(top level)' has the key 'model' twice"), std::string::npos) << message;
  message = load_error(with(R"("decoder":{)", R"("trim_offsets":false,)"));
  EXPECT_NE(message.find("field 'decoder' has the key 'trim_offsets' twice"), std::string::npos) << message;
  EXPECT_NE(message.find("t.json"), std::string::npos) << message;
}

TEST(TokenizerJson, NumberBeyondDoubleNamesItsField) {
  std::string text = minimal().dump();
  text.replace(text.find(R"("a":0)"), 5, R"("a":1e999)");
  const auto message = load_error(text);
  EXPECT_NE(message.find("t.json"), std::string::npos) << message;
  EXPECT_NE(message.find("field 'model.vocab.a'"), std::string::npos) << message;
  EXPECT_NE(message.find("finite number"), std::string::npos) << message;
}

TEST(TokenizerJson, FieldsTokenizersRequiresAreRequired) {
  for (const char* flag : {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"}) {
    expect_refused([&](Json& j) { j["added_tokens"][0].erase(flag); },
                   fmt::format("field 'added_tokens[0].{}' is missing", flag));
  }
  expect_refused([](Json& j) { j["added_tokens"] = nullptr; }, "field 'added_tokens' must be an array");
  for (const char* option : {"add_prefix_space", "trim_offsets"}) {
    expect_refused([&](Json& j) { j["pre_tokenizer"].erase(option); }, fmt::format("'pre_tokenizer.{}' is missing", option));
    expect_refused([&](Json& j) { j["decoder"].erase(option); }, fmt::format("'decoder.{}' is missing", option));
    expect_refused(
        [&](Json& j) {
          j["post_processor"] = j["decoder"];
          j["post_processor"].erase(option);
        },
        fmt::format("'post_processor.{}' is missing", option));
  }
  const Json split = Json::parse(R"({"type": "Split", "pattern": {"Regex": " "}, "behavior": "Isolated", "invert": false})");
  for (const char* field : {"pattern", "behavior", "invert"}) {
    expect_refused(
        [&](Json& j) {
          j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", Json::array({split, j["pre_tokenizer"]})}};
          j["pre_tokenizer"]["pretokenizers"][0].erase(field);
        },
        fmt::format("'pre_tokenizer.pretokenizers[0].{}' is missing", field));
  }
  expect_refused(
      [&](Json& j) {
        j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", Json::array({split, j["pre_tokenizer"]})}};
        j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["String"] = " ";
      },
      "(exactly one key)");
  expect_refused(
      [&](Json& j) {
        j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", Json::array({split, j["pre_tokenizer"]})}};
        j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Bogus";
      },
      "('Bogus') must be one of Removed, Isolated");
  expect_refused(
      [](Json& j) {
        j["post_processor"] = Json::parse(R"({"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}],
                                             "special_tokens": {}})");
      },
      "'post_processor.pair' is missing");
}

TEST(TokenizerJson, NullModelFlagsMeanTheirDefault) {
  // `tokenizers` reads fuse_unk, byte_fallback and ignore_merges as optional booleans.
  Json json = minimal();
  for (const char* flag : {"fuse_unk", "byte_fallback", "ignore_merges"}) json["model"][flag] = nullptr;
  EXPECT_EQ(Tokenizer::from_json(json.dump(), "t.json").encode("abc ab"), (std::vector<kiln::tok::TokenId>{3, 2, 4, 3}));
}

// ---- ids far beyond the file's contents (issue 16) -------------------------------------------

TEST(TokenizerJson, HugeVocabularyIdIsRefusedBeforeAllocating) {
  // 400000000 entries of the id tables would be ~24 GB: refused at once, naming token and id.
  const auto started = std::chrono::steady_clock::now();
  const auto message = load_error([](Json& j) { j["model"]["vocab"]["c"] = 400000000; });
  EXPECT_NE(message.find("t.json"), std::string::npos) << message;
  EXPECT_NE(message.find("the token 'c' has the id 400000000"), std::string::npos) << message;
  EXPECT_NE(message.find("expected ids below"), std::string::npos) << message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

TEST(TokenizerJson, SparseIdsWithinTheAllowanceLoadAsTokenizersDoes) {
  // `tokenizers` accepts holes in the ids; kiln too, while the largest id stays below
  // 2 x entries + 1024.
  Json json = minimal();
  json["model"]["vocab"]["c"] = 1000;
  const auto tokenizer = Tokenizer::from_json(json.dump(), "t.json");
  EXPECT_EQ(tokenizer.encode("abc"), (std::vector<kiln::tok::TokenId>{3, 1000}));
  EXPECT_EQ(tokenizer.decode(std::vector<kiln::tok::TokenId>{1000}), "c");
  EXPECT_FALSE(tokenizer.id_to_token(999));
}

TEST(TokenizerJson, AddedTokenIdInTheFileDoesNotSizeAnything) {
  // `tokenizers` ignores an added token's id for a new token: it gets the next free one.
  Json json = minimal();
  json["added_tokens"].push_back(added_token(400000000, "<big>", true));
  const auto tokenizer = Tokenizer::from_json(json.dump(), "t.json");
  EXPECT_EQ(tokenizer.token_to_id("<big>"), 6U);
  EXPECT_EQ(tokenizer.vocab_size(), 7U);
}

// ---- files -----------------------------------------------------------------------------------

std::filesystem::path scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("kiln_tokenizer_json_test_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(TokenizerJson, NonRegularFilesAreRefusedByName) {
  const auto dir = scratch_dir("non_regular");
  const auto fifo = dir / "fifo.json";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const auto& [path, kind] : {std::pair{dir, std::string("a directory")}, std::pair{fifo, std::string("a FIFO")},
                                   std::pair{std::filesystem::path("/dev/zero"), std::string("a character device")}}) {
    try {
      (void)Tokenizer::load(path);
      ADD_FAILURE() << "loaded " << path;
    } catch (const kiln::Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("tokenizer '" + path.string() + "' is " + kind), std::string::npos) << message;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(TokenizerJson, SaveReplacesTheFileAtomically) {
  // The new file is renamed over the old one: a hard link to the old file keeps the old
  // bytes (an in-place rewrite would change them under it) and no temporary is left behind.
  const auto dir = scratch_dir("save");
  const auto target = dir / "tokenizer.json";
  const auto link = dir / "previous.json";
  { std::ofstream(target) << "old"; }
  std::filesystem::create_hard_link(target, link);
  const auto tokenizer = Tokenizer::from_json(minimal().dump(), "t.json");
  tokenizer.save(target);
  std::stringstream saved;
  saved << std::ifstream(target).rdbuf();
  EXPECT_EQ(saved.str(), tokenizer.to_json());
  std::stringstream previous;
  previous << std::ifstream(link).rdbuf();
  EXPECT_EQ(previous.str(), "old");
  EXPECT_FALSE(std::filesystem::exists(dir / "tokenizer.json.tmp"));
  std::filesystem::remove_all(dir);
}

}  // namespace
