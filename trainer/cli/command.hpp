#pragma once
// Each verb of `kiln` lives in its own <verb>_command.cpp and registers itself on the app:
// it declares its flags and sets the callback that runs when the verb is chosen.
#include <CLI/CLI.hpp>

#include <string>

namespace kiln::cli {

// The --device option of the verbs that load a checkpoint (eval, generate, score): where the
// model runs, passed to train::load_checkpoint_model.
inline void add_device_option(CLI::App* command, std::string& device) {
  command->add_option("--device", device, "Where the model runs: cpu, cuda, or auto (the GPU when one is usable)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
}

void add_tokenizer_command(CLI::App& app);
void add_prepare_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_corpus_command(CLI::App& app);
void add_curate_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_import_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_plan_command(CLI::App& app);

}  // namespace kiln::cli
