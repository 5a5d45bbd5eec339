#pragma once
// Exact-match accuracy on held-out tasks (`kiln corpus --tasks-out` writes them): for each
// {"kind", "prompt", "answer"} record the model continues the prompt greedily, and the task
// counts as solved when the text up to the first newline equals the answer exactly.
//
// Long-context tasks also carry "context_chars", the prompt length they were made for
// (data/corpus/long_context_corpus.hpp); they are scored by kind and by (kind, length) too,
// with the prompts' real token counts, so a reader sees at which context length accuracy
// falls. A task whose prompt and answer do not fit the model's context (model.max_seq_len)
// cannot be answered at all: it is skipped and counted as skipped, never scored as wrong.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::train {

struct TaskScore {
  std::int64_t tasks = 0;    // scored
  std::int64_t correct = 0;
  std::int64_t skipped = 0;  // too long for the model's context
  double accuracy() const { return tasks > 0 ? static_cast<double>(correct) / static_cast<double>(tasks) : 0.0; }
};

// One (kind, context_chars) bucket: its score and its prompts' token counts (scored and
// skipped tasks alike).
struct LengthScore : TaskScore {
  std::int64_t min_prompt_tokens = 0;
  std::int64_t max_prompt_tokens = 0;
  double total_prompt_tokens = 0.0;
  double mean_prompt_tokens() const;
  void add_prompt(std::int64_t tokens);
};

struct TaskAccuracy {
  TaskScore total;
  std::map<std::string, TaskScore> by_kind;
  std::map<std::pair<std::string, std::uint64_t>, LengthScore> by_length;  // tasks with context_chars
};

// Reads at most max_tasks tasks (0 = all; skipped tasks count). Throws kiln::Error naming the
// file and line of a malformed record, or when the file holds no task.
TaskAccuracy evaluate_tasks(model::Transformer& model, const tok::Tokenizer& tokenizer,
                            const std::filesystem::path& tasks_path, std::int64_t max_tasks = 0);

}  // namespace kiln::train
