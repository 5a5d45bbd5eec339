// Task accuracy (`kiln eval --tasks`): exact match of the greedy continuation, scores by kind
// and by (kind, context length) with the prompts' token counts, and tasks too long for the
// model's context skipped and counted rather than crashing generation or scored as wrong.
#include "trainer/train/task_accuracy.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "tests/dataset/test_datasets.hpp"
#include "tests/model/model_testing.hpp"
#include "trainer/core/error.hpp"

namespace kiln::train {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kContext = 48;

tok::Tokenizer fixture_tokenizer() {
  return tok::Tokenizer::load(fs::path(KILN_FIXTURES_DIR) / "interop" / "llama" / "tokenizer.json");
}

struct Fixture {
  tok::Tokenizer tokenizer = fixture_tokenizer();
  model::Transformer model{model::testing::fixture_llama(kContext)};
  Fixture() { model.init_weights(3); }

  std::int64_t prompt_tokens(const std::string& prompt) const {
    return static_cast<std::int64_t>(tokenizer.encode(prompt, true).size());
  }

  // Makes the model answer nothing: with the final norm's weight zero every logit is zero,
  // greedy decoding takes the lowest id, <|end_of_text|>, and generation stops at once. So
  // the expected answers are known without training a model (an untrained one babbles
  // bytes that need not even be UTF-8).
  void silence() { ops::zero(model.parameters().value("final_norm.weight")); }
};

// A prompt of exactly `tokens` tokens (with the tokenizer's special tokens): characters are
// added one at a time, each kept only when it does not overshoot.
std::string prompt_of_tokens(const tok::Tokenizer& tokenizer, std::int64_t tokens) {
  const auto count = [&](const std::string& text) { return static_cast<std::int64_t>(tokenizer.encode(text, true).size()); };
  std::string prompt = "Note:";
  const std::string letters = " riverflowsthemill";
  for (std::size_t i = 0; count(prompt) < tokens && i < 100000; ++i) {
    const std::string longer = prompt + letters[i % letters.size()];
    if (count(longer) <= tokens) prompt = longer;
  }
  EXPECT_EQ(count(prompt), tokens) << prompt;
  return prompt;
}

void write_tasks(const fs::path& path, const std::vector<nlohmann::json>& tasks) {
  std::ofstream out(path);
  for (const auto& task : tasks) out << task.dump() << "\n";
}

TEST(TaskAccuracy, ScoresByKindAndByContextLengthAndSkipsWhatDoesNotFit) {
  Fixture f;
  kiln::testing::TempDir dir;
  f.silence();
  const std::string question = "What is 12 plus 7?";
  const std::string short_prompt = "The pass key is 123. What is the pass key?";
  const std::string long_prompt = prompt_of_tokens(f.tokenizer, kContext + 5);  // can never fit
  write_tasks(dir / "tasks.jsonl",
              {{{"kind", "arithmetic"}, {"prompt", question}, {"answer", ""}},
               {{"kind", "arithmetic"}, {"prompt", question}, {"answer", " 19"}},
               {{"kind", "passkey"}, {"prompt", short_prompt}, {"answer", " 123"}, {"context_chars", 100}},
               {{"kind", "passkey"}, {"prompt", long_prompt}, {"answer", " 123"}, {"context_chars", 400}},
               {{"kind", "passkey"}, {"prompt", long_prompt + " again"}, {"answer", " 123"}, {"context_chars", 400}},
               {{"kind", "language"}, {"prompt", short_prompt}, {"answer", " 123"}, {"context_chars", 100}}});
  const TaskAccuracy accuracy = evaluate_tasks(f.model, f.tokenizer, dir / "tasks.jsonl");

  EXPECT_EQ(accuracy.total.tasks, 4);
  EXPECT_EQ(accuracy.total.skipped, 2);
  EXPECT_EQ(accuracy.by_kind.at("arithmetic").tasks, 2);
  EXPECT_EQ(accuracy.by_kind.at("arithmetic").correct, 1);  // the answer the model gives, and only that one
  EXPECT_DOUBLE_EQ(accuracy.by_kind.at("arithmetic").accuracy(), 0.5);
  EXPECT_EQ(accuracy.by_kind.at("passkey").skipped, 2);

  ASSERT_EQ(accuracy.by_length.size(), 3u);  // short tasks carry no length
  const LengthScore& fits = accuracy.by_length.at({"passkey", 100});
  EXPECT_EQ(fits.tasks, 1);
  EXPECT_EQ(fits.skipped, 0);
  EXPECT_EQ(fits.min_prompt_tokens, f.prompt_tokens(short_prompt));
  const LengthScore& too_long = accuracy.by_length.at({"passkey", 400});
  EXPECT_EQ(too_long.tasks, 0);
  EXPECT_EQ(too_long.skipped, 2);
  EXPECT_EQ(too_long.min_prompt_tokens, kContext + 5);
  EXPECT_EQ(too_long.max_prompt_tokens, f.prompt_tokens(long_prompt + " again"));
  EXPECT_DOUBLE_EQ(too_long.mean_prompt_tokens(), static_cast<double>(kContext + 5 + too_long.max_prompt_tokens) / 2.0);
  EXPECT_EQ(accuracy.by_length.at({"language", 100}).tasks, 1);
}

TEST(TaskAccuracy, APromptThatFillsTheContextWithItsAnswerIsScored) {
  Fixture f;
  kiln::testing::TempDir dir;
  const std::string answer = " 123";
  const auto answer_tokens = static_cast<std::int64_t>(f.tokenizer.encode(answer).size());
  const std::string fits = prompt_of_tokens(f.tokenizer, kContext - answer_tokens);
  const std::string one_over = prompt_of_tokens(f.tokenizer, kContext - answer_tokens + 1);
  write_tasks(dir / "tasks.jsonl", {{{"kind", "passkey"}, {"prompt", fits}, {"answer", answer}, {"context_chars", 200}},
                                    {{"kind", "passkey"}, {"prompt", one_over}, {"answer", answer}, {"context_chars", 200}}});
  const TaskAccuracy accuracy = evaluate_tasks(f.model, f.tokenizer, dir / "tasks.jsonl");
  EXPECT_EQ(accuracy.total.tasks, 1);
  EXPECT_EQ(accuracy.total.skipped, 1);
}

TEST(TaskAccuracy, MaxTasksCountsSkippedTasksToo) {
  Fixture f;
  kiln::testing::TempDir dir;
  const std::string long_prompt = prompt_of_tokens(f.tokenizer, kContext + 1);
  write_tasks(dir / "tasks.jsonl", {{{"kind", "passkey"}, {"prompt", long_prompt}, {"answer", " 1"}},
                                    {{"kind", "facts"}, {"prompt", "Q: Where? A:"}, {"answer", " Here"}},
                                    {{"kind", "facts"}, {"prompt", "Q: When? A:"}, {"answer", " Now"}}});
  const TaskAccuracy accuracy = evaluate_tasks(f.model, f.tokenizer, dir / "tasks.jsonl", 2);
  EXPECT_EQ(accuracy.total.skipped, 1);
  EXPECT_EQ(accuracy.total.tasks, 1);
}

TEST(TaskAccuracy, MalformedContextLengthNamesFileAndLine) {
  Fixture f;
  kiln::testing::TempDir dir;
  write_tasks(dir / "tasks.jsonl", {{{"kind", "facts"}, {"prompt", "Q: Where? A:"}, {"answer", " Here"}},
                                    {{"kind", "passkey"}, {"prompt", "Key?"}, {"answer", " 1"}, {"context_chars", "4k"}}});
  try {
    evaluate_tasks(f.model, f.tokenizer, dir / "tasks.jsonl");
    FAIL() << "a string context_chars was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("tasks.jsonl:2: \"context_chars\""), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace kiln::train
