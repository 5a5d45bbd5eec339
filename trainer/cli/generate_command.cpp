// `kiln generate --checkpoint PATH --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K]
//                [--top-p P] [--seed S] [--stop TOKEN ...] [--device cpu|cuda|auto]`
#include <fmt/format.h>

#include <memory>

#include "trainer/cli/command.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"
#include "trainer/train/checkpoint_model.hpp"
#include "trainer/train/generate.hpp"

namespace kiln::cli {

namespace {

struct GenerateFlags {
  std::string checkpoint;
  std::string device = "auto";
  std::string prompt;
  std::string prompt_file;
  std::vector<std::string> stop;
  train::GenerateOptions options;
};

std::string read_prompt(const GenerateFlags& flags) {
  if (flags.prompt_file.empty()) return flags.prompt;
  return read_text_file(flags.prompt_file, "prompt file");
}

void run_generate(GenerateFlags& flags) {
  auto loaded = train::load_checkpoint_model(flags.checkpoint, flags.device);
  if (!loaded.tokenizer) fail("checkpoint {} carries no tokenizer.json", loaded.step_dir.string());
  const auto& tokenizer = *loaded.tokenizer;
  flags.options.stop_ids = train::stop_ids_for(tokenizer, flags.stop);
  const std::string prompt = read_prompt(flags);
  const auto generation = train::generate_ids(*loaded.model, tokenizer.encode(prompt, true), flags.options);
  fmt::print("{}{}\n", prompt, tokenizer.decode(generation.ids, true));
  fmt::print(stderr, "[{} tokens, stopped: {}, on {}]\n", generation.ids.size(), generation.stop_reason, loaded.device);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  auto& sampling = flags->options.sampling;
  auto* command = app.add_subcommand("generate", "Continue a prompt with a trained checkpoint (KV cache, sampling)");
  command->add_option("--checkpoint", flags->checkpoint, "Step directory, checkpoints/ directory or run directory")
      ->required();
  add_device_option(command, flags->device);
  auto* prompt = command->add_option("--prompt", flags->prompt, "Prompt text");
  auto* prompt_file = command->add_option("--prompt-file", flags->prompt_file, "Read the prompt from a file");
  prompt->excludes(prompt_file);
  command->add_option("--max-tokens", flags->options.max_tokens, "Tokens to generate at most")
      ->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--temperature", sampling.temperature, "Softmax temperature; 0 = greedy")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("--top-k", sampling.top_k, "Sample among the k most likely tokens (0: all)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("--top-p", sampling.top_p, "Nucleus sampling: smallest set with this probability")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  command->add_option("--seed", flags->options.seed, "Sampling seed")->capture_default_str();
  command->add_option("--stop", flags->stop, "Extra stop token(s) besides the end-of-text token");
  command->callback([flags] {
    if (flags->prompt.empty() && flags->prompt_file.empty()) fail("kiln generate needs --prompt or --prompt-file");
    run_generate(*flags);
  });
}

}  // namespace kiln::cli
