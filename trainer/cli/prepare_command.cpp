// `kiln prepare`: tokenizes corpus files into DIR/train.h5 and DIR/val.h5.
#include <fmt/format.h>

#include <memory>

#include "data/dataset/prepare.hpp"
#include "parallel/mpi_environment.hpp"
#include "trainer/cli/command.hpp"

namespace kiln::cli {

namespace {

struct PrepareFlags {
  data::PrepareOptions options;
  std::string tokenizer;
  std::vector<std::string> inputs;
  std::string out;
  std::string eos;
  bool skip_bad_records = false;
  bool quiet = false;
};

void print_summary(const data::PrepareOptions& options, const data::PrepareSummary& summary) {
  const double tokens = static_cast<double>(summary.train.tokens + summary.val.tokens);
  fmt::print("prepared {} in {:.1f} s on {} rank(s) x {} thread(s): {:.0f} tokens/s, {:.1f} MB/s of text\n",
             options.out_dir.string(), summary.seconds, summary.ranks, summary.threads, tokens / summary.seconds,
             static_cast<double>(summary.input_bytes) / 1e6 / summary.seconds);
  fmt::print("  train.h5: {} documents, {} tokens\n", summary.train.documents, summary.train.tokens);
  fmt::print("  val.h5:   {} documents, {} tokens\n", summary.val.documents, summary.val.tokens);
  if (summary.skipped_records) fmt::print("  skipped {} bad records\n", summary.skipped_records);
  if (summary.val.documents == 0 && options.val_fraction > 0) {
    fmt::print(stderr, "kiln: warning: the validation split is empty; raise --val-fraction or add documents\n");
  }
}

void run_prepare(PrepareFlags& flags) {
  auto& options = flags.options;
  options.tokenizer = flags.tokenizer;
  options.inputs.assign(flags.inputs.begin(), flags.inputs.end());
  options.out_dir = flags.out;
  if (!flags.eos.empty()) options.eos_token = flags.eos;
  options.on_bad_record = flags.skip_bad_records ? data::BadRecordPolicy::Skip : data::BadRecordPolicy::Fail;
  options.progress = !flags.quiet;
  const auto summary = data::prepare_datasets(options);
  if (parallel::MpiEnvironment::instance().is_root()) print_summary(options, summary);
}

}  // namespace

void add_prepare_command(CLI::App& app) {
  auto flags = std::make_shared<PrepareFlags>();
  auto& options = flags->options;
  auto* command = app.add_subcommand(
      "prepare", "Tokenize text / JSONL / JSONL.zst files into HDF5 datasets DIR/train.h5 and DIR/val.h5");
  command->add_option("--tokenizer", flags->tokenizer, "tokenizer.json to encode with")->required();
  command->add_option("--input", flags->inputs, "Input files: .txt (one document each), .jsonl, .jsonl.zst")
      ->required();
  command->add_option("--out", flags->out, "Output directory")->required();
  command->add_option("--text-field", options.text_field, "JSON field holding the text")->capture_default_str();
  command->add_option("--val-fraction", options.val_fraction, "Fraction of documents held out for val.h5")
      ->capture_default_str();
  command->add_option("--seed", options.seed, "Seed of the train/val split")->capture_default_str();
  command->add_option("--threads", options.threads, "Tokenizer threads per rank (0: all cores)")
      ->capture_default_str();
  command->add_option("--eos", flags->eos, "End-of-document token (default: the tokenizer's end-of-text token)");
  command->add_flag("--skip-bad-records", flags->skip_bad_records,
                    "Skip malformed JSON lines and invalid UTF-8 (reported and counted) instead of failing");
  command->add_option("--batch-bytes", options.batch_bytes, "Text per unit of work (a batch goes to one rank)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  command->add_flag("--quiet", flags->quiet, "No progress lines");
  command->callback([flags] { run_prepare(*flags); });
}

}  // namespace kiln::cli
