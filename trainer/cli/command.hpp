#pragma once
// Each verb of `kiln` lives in its own <verb>_command.cpp and registers itself on the app:
// it declares its flags and sets the callback that runs when the verb is chosen.
#include <CLI/CLI.hpp>

namespace kiln::cli {

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

}  // namespace kiln::cli
