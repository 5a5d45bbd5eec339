// `kiln eval --checkpoint PATH --data FILE.h5 [--batches N] [--tasks FILE] [--device D]`: one JSON object.
// --batches is at most what the dataset holds; SIGINT/SIGTERM end the evaluation after the
// batch in flight with an error (exit 1) and no result, rather than be ignored until the end.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

#include "data/dataset/verified_dataset.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/stop_signal.hpp"
#include "trainer/train/checkpoint_model.hpp"
#include "trainer/train/evaluate.hpp"
#include "trainer/train/task_accuracy.hpp"

namespace kiln::cli {

namespace {

struct EvalFlags {
  std::string checkpoint;
  std::string device = "auto";
  std::string data;
  std::string tasks;
  std::int64_t batches = 0;
  std::int64_t rows = 0;
  std::int64_t max_tasks = 0;
};

nlohmann::json loss_fields(train::CheckpointModel& loaded, const EvalFlags& flags) {
  train::EvalOptions options;
  options.seq_len = loaded.recipe.train.seq_len;
  options.rows = flags.rows > 0 ? flags.rows : loaded.recipe.train.micro_batch_size;
  options.batches = flags.batches;
  options.packed = loaded.recipe.data.packed;
  const auto dataset = data::open_verified_dataset(flags.data, "eval");
  const auto held = train::batches_in_dataset(dataset, options);
  if (flags.batches > held) {
    fail("--batches {}: {} holds {} batch(es) of {} x {} tokens. Fix: pass --batches {} or less (0: the whole "
         "dataset)",
         flags.batches, flags.data, held, options.rows, options.seq_len, held);
  }
  const StopSignalHandler stop_handler(/*announce=*/false);
  const auto result = train::evaluate(*loaded.model, dataset, options);
  if (result.stopped) {
    fail("evaluation stopped by signal {} after {} of {} batches; no result printed", stop_signal_number(),
         result.batches, flags.batches > 0 ? flags.batches : held);
  }
  return {{"loss", result.loss}, {"perplexity", result.perplexity()}, {"tokens", result.tokens}, {"data", flags.data}};
}

nlohmann::json task_fields(train::CheckpointModel& loaded, const EvalFlags& flags) {
  if (!loaded.tokenizer) fail("checkpoint {} carries no tokenizer.json; --tasks needs one", loaded.step_dir.string());
  const auto accuracy = train::evaluate_tasks(*loaded.model, *loaded.tokenizer, flags.tasks, flags.max_tasks);
  nlohmann::json by_kind = nlohmann::json::object();
  for (const auto& [kind, score] : accuracy.by_kind) {
    by_kind[kind] = {{"tasks", score.tasks}, {"correct", score.correct}, {"accuracy", score.accuracy()}};
  }
  return {{"tasks", accuracy.total.tasks}, {"correct", accuracy.total.correct},
          {"accuracy", accuracy.total.accuracy()}, {"by_kind", by_kind}};
}

void run_eval(const EvalFlags& flags) {
  if (flags.data.empty() && flags.tasks.empty()) fail("kiln eval needs --data FILE.h5 and/or --tasks FILE.jsonl");
  auto loaded = train::load_checkpoint_model(flags.checkpoint, flags.device);
  nlohmann::json result = {{"checkpoint", loaded.step_dir.string()}, {"step", loaded.step}, {"device", loaded.device}};
  if (!flags.data.empty()) result.update(loss_fields(loaded, flags));
  if (!flags.tasks.empty()) result["task_accuracy"] = task_fields(loaded, flags);
  fmt::print("{}\n", result.dump());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto flags = std::make_shared<EvalFlags>();
  auto* command = app.add_subcommand("eval", "Loss and perplexity of a checkpoint on a dataset (and accuracy on tasks), as JSON");
  command->add_option("--checkpoint", flags->checkpoint, "Step directory, checkpoints/ directory or run directory")
      ->required();
  add_device_option(command, flags->device);
  command->add_option("--data", flags->data, "Token dataset (.h5) to measure the loss on");
  command->add_option("--batches", flags->batches, "Forward passes to average over (0: the whole dataset)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("--rows", flags->rows, "Sequences per forward pass (default: the recipe's micro-batch)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--tasks", flags->tasks, "Held-out tasks JSONL {kind, prompt, answer}: greedy exact-match accuracy");
  command->add_option("--max-tasks", flags->max_tasks, "Evaluate at most this many tasks (0: all)")
      ->check(CLI::NonNegativeNumber);
  command->callback([flags] { run_eval(*flags); });
}

}  // namespace kiln::cli
