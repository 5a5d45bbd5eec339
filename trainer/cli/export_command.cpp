// `kiln export --checkpoint PATH --format hf|gguf --out PATH [--dtype f32|f16|bf16|q8_0]`.
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "trainer/cli/command.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/gguf_export.hpp"
#include "trainer/export/hf_export.hpp"

namespace kiln::cli {

namespace {

struct ExportFlags {
  std::string checkpoint;
  std::string format;
  std::string out;
  std::string dtype;  // "" = f32 for hf, f16 for gguf
  std::string chat_template;
  std::uint64_t max_shard_bytes = 5'000'000'000;
};

void export_checkpoint(const ExportFlags& flags) {
  const interop::ExportSource source(flags.checkpoint, flags.chat_template);
  const std::string template_note = source.chat_template().empty() ? "" : ", chat template " + source.chat_template();
  if (flags.format == "hf") {
    interop::HfExportOptions options{flags.out, interop::parse_export_dtype(flags.dtype.empty() ? "f32" : flags.dtype),
                                     flags.max_shard_bytes};
    const auto result = interop::export_hf(source, options);
    fmt::print("exported {} -> {} (Hugging Face, {}): {} tensors, {:.1f} MB in {} safetensors file(s){}\n",
               source.step_dir().string(), flags.out, interop::export_dtype_name(options.dtype), result.tensors,
               static_cast<double>(result.bytes) / 1e6, result.shards, template_note);
    return;
  }
  interop::GgufExportOptions options{flags.out, interop::parse_export_dtype(flags.dtype.empty() ? "f16" : flags.dtype)};
  const auto result = interop::export_gguf(source, options);
  fmt::print("exported {} -> {} (GGUF v3, {}): {} tensors, {:.1f} MB{}\n", source.step_dir().string(), flags.out,
             interop::export_dtype_name(options.dtype), result.tensors, static_cast<double>(result.bytes) / 1e6,
             template_note);
  if (result.f16_fallbacks > 0) {
    fmt::print("  {} matrices have rows that are not a multiple of 32 and were written as F16, not Q8_0\n",
               result.f16_fallbacks);
  }
}

// The writers and the tokenizer reader below use std::filesystem and nlohmann-json directly;
// their exceptions become errors naming the checkpoint and the output instead of an
// "internal error".
void run_export(const ExportFlags& flags) {
  try {
    export_checkpoint(flags);
  } catch (const std::filesystem::filesystem_error& error) {
    fail("export of {} to {}: {} ('{}'{})", flags.checkpoint, flags.out, error.code().message(), error.path1().string(),
         error.path2().empty() ? "" : ", '" + error.path2().string() + "'");
  } catch (const nlohmann::json::exception& error) {
    fail("export of {}: a JSON file of the checkpoint (tokenizer.json, meta.json) is malformed: {}", flags.checkpoint,
         error.what());
  }
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto flags = std::make_shared<ExportFlags>();
  auto* command = app.add_subcommand("export", "Write a checkpoint as a Hugging Face directory or a GGUF file");
  command->add_option("--checkpoint", flags->checkpoint, "Step directory, checkpoints/ directory or run directory")
      ->required();
  command->add_option("--format", flags->format, "hf (transformers directory) or gguf (llama.cpp file)")
      ->required()->check(CLI::IsMember({"hf", "gguf"}));
  command->add_option("--out", flags->out, "Output directory (hf) or file (gguf)")->required();
  command->add_option("--dtype", flags->dtype, "Weights: f32, f16, bf16, or q8_0 (gguf); default f32 (hf), f16 (gguf)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}));
  command->add_option("--chat-template", flags->chat_template,
                      "Chat template to ship (chatml, llama3); default: the one the training data was rendered with");
  command->add_option("--max-shard-size", flags->max_shard_bytes, "hf: bytes per safetensors shard")
      ->capture_default_str()->check(CLI::PositiveNumber);
  command->callback([flags] { run_export(*flags); });
}

}  // namespace kiln::cli
