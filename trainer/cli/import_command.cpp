// `kiln import --from hf DIR --out PATH`: a Hugging Face GPT-2 or Llama directory -> a kiln
// checkpoint that eval, generate, score, export and `model.init_from` read.
#include <fmt/format.h>

#include <memory>

#include "trainer/cli/command.hpp"
#include "trainer/export/hf_import.hpp"
#include "trainer/model/model_config.hpp"

namespace kiln::cli {

namespace {

struct ImportFlags {
  std::string from = "hf";
  std::string dir;
  std::string out;
};

void run_import(const ImportFlags& flags) {
  const auto result = interop::import_hf_checkpoint(flags.dir, flags.out);
  const auto& m = result.model;
  fmt::print("imported {} ({} model: {} layers, d_model {}, {} heads ({} kv), vocab {}, {} embeddings) -> {}\n",
             flags.dir, config::to_string(m.family), m.n_layers, m.d_model, m.n_heads, m.n_kv_heads, m.vocab_size,
             m.tie_embeddings ? "tied" : "untied", result.step_dir.string());
  fmt::print("  {} tensors{}; start a recipe from it with model.init_from: {}\n", result.tensors,
             result.tokenizer_carried ? ", tokenizer.json carried along" : ", no tokenizer.json found (none carried)",
             flags.out);
}

}  // namespace

void add_import_command(CLI::App& app) {
  auto flags = std::make_shared<ImportFlags>();
  auto* command = app.add_subcommand("import", "Convert a Hugging Face GPT-2 / Llama checkpoint into a kiln checkpoint");
  command->add_option("--from", flags->from, "Source format")->capture_default_str()->check(CLI::IsMember({"hf"}));
  command->add_option("dir", flags->dir, "Model directory: config.json, model.safetensors (or shards), tokenizer.json")
      ->required();
  command->add_option("--out", flags->out, "Run directory to create; the checkpoint goes to OUT/checkpoints/")
      ->required();
  command->callback([flags] { run_import(*flags); });
}

}  // namespace kiln::cli
