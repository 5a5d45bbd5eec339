// `kiln corpus`: writes the built-in generated corpus (and held-out tasks) as JSONL.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>

#include "data/corpus/builtin_corpus.hpp"
#include "data/corpus/long_context_corpus.hpp"
#include "data/io/line_writer.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cli {

namespace {

struct CorpusOptions {
  std::string out;
  std::string tasks_out;
  std::uint64_t documents = 20000;
  std::uint64_t tasks = 500;
  std::uint64_t seed = 1;
  std::uint64_t world_seed = 2024;
  std::string long_context;            // LENGTHS as typed
  std::uint64_t long_context_tasks = 20;  // per kind and length
  int long_context_docs = 0;           // percent of the documents
};

nlohmann::json task_record(const data::CorpusTask& task) {
  nlohmann::json record{{"kind", task.kind}, {"prompt", task.prompt}, {"answer", task.answer}};
  if (task.context_chars > 0) record["context_chars"] = task.context_chars;
  if (task.depth) record["depth"] = *task.depth;
  return record;
}

// Flags that would silently do nothing are refused rather than ignored.
std::vector<std::uint64_t> checked_context_lengths(const CorpusOptions& options) {
  if (options.long_context.empty()) {
    if (options.long_context_docs > 0) {
      fail("--long-context-docs {} needs --long-context LENGTHS (the longest length caps the documents)",
           options.long_context_docs);
    }
    return {};
  }
  if (options.tasks_out.empty() && options.long_context_docs == 0) {
    fail("--long-context {} does nothing without --tasks-out T.jsonl (held-out tasks) or --long-context-docs "
         "PERCENT (training documents)", options.long_context);
  }
  return data::parse_context_lengths(options.long_context);
}

void write_documents(const CorpusOptions& options, const std::vector<std::uint64_t>& lengths) {
  const data::BuiltinCorpus corpus(options.world_seed);
  const std::uint64_t longest = lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end());
  data::LineWriter documents(options.out);
  std::uint64_t bytes = 0;
  std::uint64_t long_documents = 0;
  for (std::uint64_t index = 0; index < options.documents; ++index) {
    const bool long_context = data::is_long_context_document(index, options.seed, options.long_context_docs);
    const auto document = long_context ? data::long_context_document(index, options.seed, longest)
                                       : corpus.document(index, options.seed);
    long_documents += long_context ? 1 : 0;
    bytes += document.text.size();
    documents.write_line(nlohmann::json{{"id", document.id}, {"kind", document.kind}, {"text", document.text}}.dump());
  }
  documents.close();
  fmt::print("wrote {} documents ({:.1f} MB of text{}) to {}\n", options.documents, static_cast<double>(bytes) / 1e6,
             long_documents > 0 ? fmt::format("; {} passkey or language documents", long_documents) : "", options.out);
}

void write_tasks(const CorpusOptions& options, const std::vector<std::uint64_t>& lengths) {
  const data::BuiltinCorpus corpus(options.world_seed);
  data::LineWriter tasks(options.tasks_out);
  for (std::uint64_t index = 0; index < options.tasks; ++index) {
    tasks.write_line(task_record(corpus.held_out_task(index, options.seed)).dump());
  }
  for (const std::uint64_t length : lengths) {
    for (const auto kind : {data::kPasskeyKind, data::kLanguageKind}) {
      for (std::uint64_t index = 0; index < options.long_context_tasks; ++index) {
        tasks.write_line(task_record(data::long_context_task(kind, length, index, options.seed)).dump());
      }
    }
  }
  tasks.close();
  fmt::print("wrote {} held-out tasks", options.tasks);
  if (!lengths.empty()) {
    fmt::print(" and {} passkey and {} language tasks at each of {} characters", options.long_context_tasks,
               options.long_context_tasks, fmt::join(lengths, ", "));
  }
  fmt::print(" to {}\n", options.tasks_out);
}

void write_corpus(const CorpusOptions& options) {
  const auto lengths = checked_context_lengths(options);
  write_documents(options, lengths);
  if (!options.tasks_out.empty()) write_tasks(options, lengths);
}

}  // namespace

void add_corpus_command(CLI::App& app) {
  auto options = std::make_shared<CorpusOptions>();
  auto* command = app.add_subcommand(
      "corpus", "Write the built-in generated corpus (arithmetic, sorting, facts, stories, code; passkey and "
      "invented-language documents and tasks with --long-context) as JSONL");
  command->add_option("--out", options->out, "Output JSONL file (.jsonl or .jsonl.zst)")->required();
  command->add_option("--docs", options->documents, "Number of documents")->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--seed", options->seed, "Seed for the documents")->capture_default_str();
  command->add_option("--world-seed", options->world_seed, "Seed of the fictional world the facts describe")
      ->capture_default_str();
  command->add_option("--tasks-out", options->tasks_out,
                      "Also write held-out tasks {kind, prompt, answer} whose operands no document contains");
  command->add_option("--tasks", options->tasks, "Number of held-out tasks")->capture_default_str();
  command->add_option("--long-context", options->long_context,
                      "Prompt lengths in characters, e.g. 1000,4k,16k: --tasks-out also gets passkey and "
                      "in-context-language tasks of each length (field context_chars)");
  command->add_option("--long-context-tasks", options->long_context_tasks,
                      "Long-context tasks per kind and length")
      ->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--long-context-docs", options->long_context_docs,
                      "Percent of the documents that are passkey or language documents (other keys, languages "
                      "and sentences than the tasks'), up to the longest --long-context length")
      ->capture_default_str()->check(CLI::Range(0, 100));
  command->callback([options] { write_corpus(*options); });
}

}  // namespace kiln::cli
