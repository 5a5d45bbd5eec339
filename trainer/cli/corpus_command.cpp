// `kiln corpus`: writes the built-in generated corpus (and held-out tasks) as JSONL.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

#include "data/corpus/builtin_corpus.hpp"
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
};

void write_corpus(const CorpusOptions& options) {
  const data::BuiltinCorpus corpus(options.world_seed);
  data::LineWriter documents(options.out);
  std::uint64_t bytes = 0;
  for (std::uint64_t index = 0; index < options.documents; ++index) {
    const auto document = corpus.document(index, options.seed);
    bytes += document.text.size();
    documents.write_line(nlohmann::json{{"id", document.id}, {"kind", document.kind}, {"text", document.text}}.dump());
  }
  documents.close();
  fmt::print("wrote {} documents ({:.1f} MB of text) to {}\n", options.documents, static_cast<double>(bytes) / 1e6,
             options.out);
  if (options.tasks_out.empty()) return;
  data::LineWriter tasks(options.tasks_out);
  for (std::uint64_t index = 0; index < options.tasks; ++index) {
    const auto task = corpus.held_out_task(index, options.seed);
    tasks.write_line(nlohmann::json{{"kind", task.kind}, {"prompt", task.prompt}, {"answer", task.answer}}.dump());
  }
  tasks.close();
  fmt::print("wrote {} held-out tasks to {}\n", options.tasks, options.tasks_out);
}

}  // namespace

void add_corpus_command(CLI::App& app) {
  auto options = std::make_shared<CorpusOptions>();
  auto* command = app.add_subcommand(
      "corpus", "Write the built-in generated corpus (arithmetic, sorting, facts, stories, code) as JSONL");
  command->add_option("--out", options->out, "Output JSONL file (.jsonl or .jsonl.zst)")->required();
  command->add_option("--docs", options->documents, "Number of documents")->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--seed", options->seed, "Seed for the documents")->capture_default_str();
  command->add_option("--world-seed", options->world_seed, "Seed of the fictional world the facts describe")
      ->capture_default_str();
  command->add_option("--tasks-out", options->tasks_out,
                      "Also write held-out tasks {kind, prompt, answer} whose operands no document contains");
  command->add_option("--tasks", options->tasks, "Number of held-out tasks")->capture_default_str();
  command->callback([options] { write_corpus(*options); });
}

}  // namespace kiln::cli
