#pragma once
// Exact-match accuracy on held-out tasks (`kiln corpus --tasks-out` writes them): for each
// {"kind", "prompt", "answer"} record the model continues the prompt greedily, and the task
// counts as solved when the text up to the first newline equals the answer exactly.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::train {

struct TaskScore {
  std::int64_t tasks = 0;
  std::int64_t correct = 0;
  double accuracy() const { return tasks > 0 ? static_cast<double>(correct) / static_cast<double>(tasks) : 0.0; }
};

struct TaskAccuracy {
  TaskScore total;
  std::map<std::string, TaskScore> by_kind;
};

// Reads at most max_tasks tasks (0 = all). Throws kiln::Error naming the file and line of a
// malformed record.
TaskAccuracy evaluate_tasks(model::Transformer& model, const tok::Tokenizer& tokenizer,
                            const std::filesystem::path& tasks_path, std::int64_t max_tasks = 0);

}  // namespace kiln::train
