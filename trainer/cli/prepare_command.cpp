// `kiln prepare`: tokenizes corpus files into DIR/train.h5 and DIR/val.h5; with
// `--format chat --template NAME --seq-len N`, chat JSONL into SFT datasets with loss masks.
#include <fmt/format.h>

#include <memory>

#include "data/dataset/prepare.hpp"
#include "parallel/mpi_environment.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cli {

namespace {

struct PrepareFlags {
  data::PrepareOptions options;
  std::string tokenizer;
  std::vector<std::string> inputs;
  std::string out;
  std::string eos;
  std::string format = "text";
  std::string overlong = "drop";
  bool no_pack = false;
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
  if (options.format == data::PrepareFormat::chat) {
    for (const auto& [name, counts] : {std::pair{"train", summary.chat_train}, std::pair{"val", summary.chat_val}}) {
      fmt::print("  {} chat: {} conversations in {} windows of {} tokens ({} trained tokens, {} filler), "
                 "{} truncated, {} dropped as longer than {}\n",
                 name, counts.conversations, counts.windows, options.chat.seq_len, counts.trained_tokens,
                 counts.filler_tokens, counts.truncated, counts.dropped, options.chat.seq_len);
    }
  }
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
  options.format = flags.format == "chat" ? data::PrepareFormat::chat : data::PrepareFormat::text;
  options.chat.pack = !flags.no_pack;
  options.chat.overlong = flags.overlong == "truncate" ? chat::OverlongPolicy::truncate : chat::OverlongPolicy::drop;
  if (options.format == data::PrepareFormat::text && !options.chat.template_name.empty()) {
    fail("--template applies to --format chat only");
  }
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
  command->add_option("--threads", options.threads, "Tokenizer threads per rank (0: OMP_NUM_THREADS, else the cores shared among this machine's ranks)")
      ->capture_default_str();
  command->add_option("--eos", flags->eos, "End-of-document token (default: the tokenizer's end-of-text token)");
  command->add_flag("--skip-bad-records", flags->skip_bad_records,
                    "Skip malformed JSON lines and invalid UTF-8 (reported and counted) instead of failing");
  command->add_option("--batch-bytes", options.batch_bytes, "Text per unit of work (a batch goes to one rank)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  command->add_flag("--quiet", flags->quiet, "No progress lines");
  command->add_option("--format", flags->format, "text: documents; chat: conversations (SFT) in JSONL")
      ->capture_default_str()->check(CLI::IsMember({"text", "chat"}));
  command->add_option("--template", options.chat.template_name, "Chat template for --format chat: chatml or llama3");
  command->add_option("--seq-len", options.chat.seq_len, "Chat: window length, equal to the recipe's train.seq_len");
  command->add_flag("--no-pack", flags->no_pack, "Chat: one conversation per window instead of packing several");
  command->add_option("--overlong", flags->overlong, "Chat: conversations longer than --seq-len are dropped or truncated")
      ->capture_default_str()->check(CLI::IsMember({"drop", "truncate"}));
  command->add_option("--messages-field", options.chat.fields.messages, "Chat: field holding [{role, content}, ...]")
      ->capture_default_str();
  command->add_option("--prompt-field", options.chat.fields.prompt, "Chat: field of a prompt/completion record's prompt")
      ->capture_default_str();
  command->add_option("--completion-field", options.chat.fields.completion,
                      "Chat: field of a prompt/completion record's answer")->capture_default_str();
  command->callback([flags] { run_prepare(*flags); });
}

}  // namespace kiln::cli
