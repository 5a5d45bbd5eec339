// `kiln eval --checkpoint PATH --data FILE.h5 [--batches N] [--by-position [N]] [--tasks FILE] [--device D]`:
// one JSON object on stdout (tables for people on stderr).
// --batches is at most what the dataset holds; SIGINT/SIGTERM end the evaluation after the
// batch in flight with an error (exit 1) and no result, rather than be ignored until the end.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
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
  std::int64_t by_position = -1;  // -1: not asked for; 0 (the flag alone): seq_len / 8
};

// Eight buckets unless the user picks a size: coarse enough that each holds many targets,
// fine enough to show a trend over the window.
std::int64_t position_bucket_size(const EvalFlags& flags, std::int64_t seq_len) {
  if (flags.by_position < 0) return 0;
  if (flags.by_position > 0) return flags.by_position;
  return std::max<std::int64_t>(1, seq_len / 8);
}

nlohmann::json position_fields(const train::EvalResult& result, const train::EvalOptions& options) {
  nlohmann::json buckets = nlohmann::json::array();
  for (const auto& bucket : result.by_position) {
    buckets.push_back({{"first", bucket.first}, {"end", bucket.end}, {"tokens", bucket.tokens},
                       {"loss", bucket.tokens > 0 ? nlohmann::json(bucket.loss()) : nlohmann::json(nullptr)}});
  }
  return {{"bucket", options.position_bucket}, {"positions", options.packed ? "document" : "window"},
          {"buckets", buckets}};
}

void print_position_table(const train::EvalResult& result, const train::EvalOptions& options) {
  fmt::print(stderr, "loss by {} position:\n", options.packed ? "in-document" : "window");
  for (const auto& bucket : result.by_position) {
    if (bucket.tokens == 0) continue;
    fmt::print(stderr, "  {:>7}-{:<7} {:.4f}  ({} targets)\n", bucket.first, bucket.end, bucket.loss(), bucket.tokens);
  }
}

nlohmann::json loss_fields(train::CheckpointModel& loaded, const EvalFlags& flags) {
  train::EvalOptions options;
  options.seq_len = loaded.recipe.train.seq_len;
  options.rows = flags.rows > 0 ? flags.rows : loaded.recipe.train.micro_batch_size;
  options.batches = flags.batches;
  options.packed = loaded.recipe.data.packed;
  options.position_bucket = position_bucket_size(flags, options.seq_len);
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
  nlohmann::json fields = {
      {"loss", result.loss}, {"perplexity", result.perplexity()}, {"tokens", result.tokens}, {"data", flags.data}};
  if (options.position_bucket > 0) {
    fields["loss_by_position"] = position_fields(result, options);
    print_position_table(result, options);
  }
  return fields;
}

nlohmann::json accuracy_or_null(const train::TaskScore& score) {
  return score.tasks > 0 ? nlohmann::json(score.accuracy()) : nlohmann::json(nullptr);
}

nlohmann::json score_fields(const train::TaskScore& score) {
  return {{"tasks", score.tasks}, {"correct", score.correct}, {"accuracy", accuracy_or_null(score)},
          {"skipped", score.skipped}};
}

nlohmann::json length_fields(const std::string& kind, std::uint64_t context_chars, const train::LengthScore& score) {
  nlohmann::json fields = score_fields(score);
  fields["kind"] = kind;
  fields["context_chars"] = context_chars;
  fields["prompt_tokens"] = {{"min", score.min_prompt_tokens}, {"mean", score.mean_prompt_tokens()},
                             {"max", score.max_prompt_tokens}};
  return fields;
}

// Tables and notes for a reader go to stderr: stdout stays one JSON object.
void print_skipped_note(const train::TaskAccuracy& accuracy, std::int64_t max_seq_len) {
  if (accuracy.total.skipped == 0) return;
  fmt::print(stderr, "skipped {} task(s) whose prompt and answer exceed the model's context of {} tokens "
             "(model.max_seq_len)\n", accuracy.total.skipped, max_seq_len);
}

void print_length_table(const train::TaskAccuracy& accuracy, std::int64_t max_seq_len) {
  fmt::print(stderr, "long-context tasks (the model's context: {} tokens):\n", max_seq_len);
  fmt::print(stderr, "  {:<10} {:>8} {:>15} {:>9} {:>7} {:>8}\n", "kind", "chars", "prompt tokens", "accuracy", "tasks",
             "skipped");
  for (const auto& [bucket, score] : accuracy.by_length) {
    const std::string percent = score.tasks > 0 ? fmt::format("{:.1f}%", 100.0 * score.accuracy()) : "-";
    fmt::print(stderr, "  {:<10} {:>8} {:>15} {:>9} {:>7} {:>8}\n", bucket.first, bucket.second,
               fmt::format("{:.0f} (max {})", score.mean_prompt_tokens(), score.max_prompt_tokens), percent,
               score.tasks, score.skipped);
  }
}

nlohmann::json task_fields(train::CheckpointModel& loaded, const EvalFlags& flags) {
  if (!loaded.tokenizer) fail("checkpoint {} carries no tokenizer.json; --tasks needs one", loaded.step_dir.string());
  const auto accuracy = train::evaluate_tasks(*loaded.model, *loaded.tokenizer, flags.tasks, flags.max_tasks);
  nlohmann::json by_kind = nlohmann::json::object();
  for (const auto& [kind, score] : accuracy.by_kind) by_kind[kind] = score_fields(score);
  nlohmann::json fields = score_fields(accuracy.total);
  fields["by_kind"] = by_kind;
  const std::int64_t max_seq_len = loaded.model->config().max_seq_len;
  if (!accuracy.by_length.empty()) {
    nlohmann::json by_length = nlohmann::json::array();
    for (const auto& [bucket, score] : accuracy.by_length) by_length.push_back(length_fields(bucket.first, bucket.second, score));
    fields["by_length"] = by_length;
    fields["max_seq_len"] = max_seq_len;
    print_length_table(accuracy, max_seq_len);
  }
  print_skipped_note(accuracy, max_seq_len);
  return fields;
}

void run_eval(const EvalFlags& flags) {
  if (flags.data.empty() && flags.tasks.empty()) fail("kiln eval needs --data FILE.h5 and/or --tasks FILE.jsonl");
  if (flags.by_position >= 0 && flags.data.empty()) fail("--by-position measures the loss on --data FILE.h5; pass one");
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
  command->add_option("--by-position", flags->by_position,
                      "Also the loss per bucket of N positions, in loss_by_position (N omitted or 0: seq_len / 8). "
                      "Positions are those the model is given: inside the document when the recipe packs "
                      "documents, else inside the window")
      ->expected(0, 1)->default_str("0")->check(CLI::NonNegativeNumber);
  command->add_option("--rows", flags->rows, "Sequences per forward pass (default: the recipe's micro-batch)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--tasks", flags->tasks, "Held-out tasks JSONL {kind, prompt, answer[, context_chars]}: greedy exact-match "
                      "accuracy by kind, and by kind and context length");
  command->add_option("--max-tasks", flags->max_tasks, "Evaluate at most this many tasks (0: all)")
      ->check(CLI::NonNegativeNumber);
  command->callback([flags] { run_eval(*flags); });
}

}  // namespace kiln::cli
