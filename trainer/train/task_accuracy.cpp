#include "trainer/train/task_accuracy.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

#include "trainer/core/error.hpp"
#include "trainer/train/generate.hpp"

namespace kiln::train {

namespace {

struct Task {
  std::string kind, prompt, answer;
  std::uint64_t context_chars = 0;  // 0: not a long-context task
};

Task parse_task(const std::string& line, const std::filesystem::path& path, std::int64_t line_number) {
  const auto json = nlohmann::json::parse(line, nullptr, false);
  if (json.is_discarded() || !json.is_object()) fail("{}:{}: not a JSON object", path.string(), line_number);
  for (const char* key : {"kind", "prompt", "answer"}) {
    if (!json.contains(key) || !json[key].is_string()) {
      fail("{}:{}: expected a string field \"{}\" (records are {{kind, prompt, answer}})", path.string(), line_number, key);
    }
  }
  Task task{json["kind"], json["prompt"], json["answer"]};
  if (json.contains("context_chars")) {
    if (!json["context_chars"].is_number_unsigned()) {
      fail("{}:{}: \"context_chars\" must be a non-negative integer (the prompt length the task was made for)",
           path.string(), line_number);
    }
    task.context_chars = json["context_chars"];
  }
  return task;
}

// Greedy continuation of the prompt up to its first newline (or the token budget).
std::string complete_line(model::Transformer& model, const tok::Tokenizer& tokenizer,
                          const std::vector<std::uint32_t>& prompt_ids, std::int64_t answer_tokens) {
  GenerateOptions options;
  options.sampling.temperature = 0.0;
  options.max_tokens = answer_tokens + 4;
  if (const auto eos = tokenizer.eos_id()) options.stop_ids.push_back(*eos);
  const auto generation = generate_ids(model, prompt_ids, options);
  const std::string text = tokenizer.decode(generation.ids, true);
  return text.substr(0, text.find('\n'));
}

void count(TaskScore& score, bool scored, bool solved) {
  if (!scored) {
    ++score.skipped;
    return;
  }
  ++score.tasks;
  score.correct += solved ? 1 : 0;
}

}  // namespace

double LengthScore::mean_prompt_tokens() const {
  const std::int64_t prompts = tasks + skipped;
  return prompts > 0 ? total_prompt_tokens / static_cast<double>(prompts) : 0.0;
}

void LengthScore::add_prompt(std::int64_t tokens) {
  const bool first = tasks + skipped == 0;
  min_prompt_tokens = first ? tokens : std::min(min_prompt_tokens, tokens);
  max_prompt_tokens = first ? tokens : std::max(max_prompt_tokens, tokens);
  total_prompt_tokens += static_cast<double>(tokens);
}

TaskAccuracy evaluate_tasks(model::Transformer& model, const tok::Tokenizer& tokenizer,
                            const std::filesystem::path& tasks_path, std::int64_t max_tasks) {
  std::ifstream in(tasks_path);
  if (!in) fail("cannot open tasks file '{}'", tasks_path.string());
  TaskAccuracy accuracy;
  std::string line;
  for (std::int64_t line_number = 1; std::getline(in, line); ++line_number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (max_tasks > 0 && accuracy.total.tasks + accuracy.total.skipped >= max_tasks) break;
    const Task task = parse_task(line, tasks_path, line_number);
    const auto prompt_ids = tokenizer.encode(task.prompt, true);
    const auto answer_tokens = static_cast<std::int64_t>(tokenizer.encode(task.answer).size());
    const auto prompt_tokens = static_cast<std::int64_t>(prompt_ids.size());
    // Generation needs the prompt and the whole answer inside the context.
    const bool fits = prompt_tokens + answer_tokens <= model.config().max_seq_len;
    const bool solved = fits && complete_line(model, tokenizer, prompt_ids, answer_tokens) == task.answer;
    count(accuracy.total, fits, solved);
    count(accuracy.by_kind[task.kind], fits, solved);
    if (task.context_chars > 0) {
      LengthScore& bucket = accuracy.by_length[{task.kind, task.context_chars}];
      bucket.add_prompt(prompt_tokens);
      count(bucket, fits, solved);
    }
  }
  if (accuracy.total.tasks + accuracy.total.skipped == 0) fail("tasks file '{}' holds no tasks", tasks_path.string());
  return accuracy;
}

}  // namespace kiln::train
