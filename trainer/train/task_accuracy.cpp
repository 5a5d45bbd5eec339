#include "trainer/train/task_accuracy.hpp"

#include <nlohmann/json.hpp>

#include <fstream>

#include "trainer/core/error.hpp"
#include "trainer/train/generate.hpp"

namespace kiln::train {

namespace {

struct Task {
  std::string kind, prompt, answer;
};

Task parse_task(const std::string& line, const std::filesystem::path& path, std::int64_t line_number) {
  const auto json = nlohmann::json::parse(line, nullptr, false);
  if (json.is_discarded() || !json.is_object()) fail("{}:{}: not a JSON object", path.string(), line_number);
  for (const char* key : {"kind", "prompt", "answer"}) {
    if (!json.contains(key) || !json[key].is_string()) {
      fail("{}:{}: expected a string field \"{}\" (records are {{kind, prompt, answer}})", path.string(), line_number, key);
    }
  }
  return {json["kind"], json["prompt"], json["answer"]};
}

// Greedy continuation of `prompt` up to its first newline (or the token budget).
std::string complete_line(model::Transformer& model, const tok::Tokenizer& tokenizer, const Task& task) {
  GenerateOptions options;
  options.sampling.temperature = 0.0;
  options.max_tokens = static_cast<std::int64_t>(tokenizer.encode(task.answer).size()) + 4;
  if (const auto eos = tokenizer.eos_id()) options.stop_ids.push_back(*eos);
  const auto generation = generate_ids(model, tokenizer.encode(task.prompt, true), options);
  const std::string text = tokenizer.decode(generation.ids, true);
  return text.substr(0, text.find('\n'));
}

}  // namespace

TaskAccuracy evaluate_tasks(model::Transformer& model, const tok::Tokenizer& tokenizer,
                            const std::filesystem::path& tasks_path, std::int64_t max_tasks) {
  std::ifstream in(tasks_path);
  if (!in) fail("cannot open tasks file '{}'", tasks_path.string());
  TaskAccuracy accuracy;
  std::string line;
  for (std::int64_t line_number = 1; std::getline(in, line); ++line_number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (max_tasks > 0 && accuracy.total.tasks >= max_tasks) break;
    const Task task = parse_task(line, tasks_path, line_number);
    const bool solved = complete_line(model, tokenizer, task) == task.answer;
    for (TaskScore* score : {&accuracy.total, &accuracy.by_kind[task.kind]}) {
      ++score->tasks;
      score->correct += solved ? 1 : 0;
    }
  }
  if (accuracy.total.tasks == 0) fail("tasks file '{}' holds no tasks", tasks_path.string());
  return accuracy;
}

}  // namespace kiln::train
