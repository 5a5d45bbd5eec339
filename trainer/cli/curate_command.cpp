// `kiln curate RECIPE [--set key.path=value ...]` or
// `kiln curate --input F... --out DIR [--eval-sets F...] [--keep-rejected]`:
// quality filters, dedup, decontamination, PII and model scoring over a corpus (DESIGN.md §8).
// This file reads the recipe (YAML, validated against data/curate/curate_recipe's schema with
// file:line:column positions and did-you-mean) and prints the summary; the pipeline itself
// lives in data/curate.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>

#include "data/curate/curate_pipeline.hpp"
#include "data/curate/curate_recipe.hpp"
#include "parallel/mpi_environment.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/config/did_you_mean.hpp"
#include "trainer/config/yaml_document.hpp"
#include "trainer/config/yaml_path.hpp"
#include "trainer/core/error.hpp"
#include "trainer/train/document_scorer.hpp"

namespace kiln::cli {

namespace {

struct CurateFlags {
  std::string recipe;
  std::vector<std::string> overrides;
  std::vector<std::string> inputs;
  std::string out;
  std::vector<std::string> eval_sets;
  std::string text_field;
  bool keep_rejected = false;
  bool skip_bad_records = false;
  bool zstd = false;
  int threads = -1;
  double memory_budget_mb = 0;
  bool quiet = false;
};

// Everything wrong with a recipe, reported together (like the training recipe's loader).
class Problems {
 public:
  Problems(std::string source, std::map<std::string, std::string> overrides)
      : source_(std::move(source)), overrides_(std::move(overrides)) {}
  void add(const std::string& path, const YAML::Node& where, const std::string& what, const std::string& fix) {
    std::string place = source_;
    if (const auto override_text = overrides_.find(path); override_text != overrides_.end()) {
      place = "--set " + override_text->second;
    } else if (const auto position = config::yaml_position(where); !position.empty()) {
      place += ":" + position;
    }
    lines_.push_back(fmt::format("{}: {}: {}{}", place, path.empty() ? "(recipe)" : path, what,
                                 fix.empty() ? "" : ". Fix: " + fix));
  }
  void throw_if_any() const {
    if (lines_.empty()) return;
    std::string message = fmt::format("{} problem(s) in the curate recipe:", lines_.size());
    for (const auto& line : lines_) message += "\n  " + line;
    fail("{}", message);
  }

 private:
  std::string source_;
  std::map<std::string, std::string> overrides_;
  std::vector<std::string> lines_;
};

std::string unknown_key_fix(const std::string& path) {
  const auto paths = curate::curate_recipe_paths();
  if (const auto suggestion = config::closest_match(path, paths)) return fmt::format("did you mean `{}`?", *suggestion);
  const auto sections = curate::curate_recipe_sections();
  const std::string section = path.substr(0, path.find('.'));
  if (const auto suggestion = config::closest_match(section, sections)) {
    return fmt::format("did you mean section `{}`? (keys are listed in recipes/CURATE.md)", *suggestion);
  }
  return "use a key listed in recipes/CURATE.md";
}

bool read_value(const YAML::Node& node, curate::RecipeValue& value) {
  if (node.IsScalar()) {
    value.scalar = node.Scalar();
    return true;
  }
  if (node.IsNull()) {
    value.is_list = true;  // `key:` with nothing: an empty list (or an error for scalars)
    return true;
  }
  if (!node.IsSequence()) return false;
  value.is_list = true;
  for (const auto& item : node) {
    if (!item.IsScalar()) return false;
    value.list.push_back(item.Scalar());
  }
  return true;
}

void apply_node(const YAML::Node& node, const std::string& prefix, curate::CurateOptions& options, Problems& problems) {
  const auto sections = curate::curate_recipe_sections();
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      problems.add(prefix, entry.first, fmt::format("a key is {}, not a plain name", config::describe_yaml_node(entry.first)),
                   "use plain names as keys");
      continue;
    }
    const std::string key = entry.first.Scalar();
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    const YAML::Node& value_node = entry.second;
    if (prefix.empty() && std::find(sections.begin(), sections.end(), key) != sections.end()) {
      if (value_node.IsMap()) apply_node(value_node, path, options, problems);
      else if (!value_node.IsNull()) problems.add(path, entry.first, "expected a mapping of keys", "indent the section's keys under it");
      continue;
    }
    const auto* field = curate::find_curate_field(path);
    if (field == nullptr) {
      problems.add(path, entry.first, "unknown key", unknown_key_fix(path));
      continue;
    }
    curate::RecipeValue value;
    if (!read_value(value_node, value)) {
      problems.add(path, value_node, fmt::format("expected {}, found {}", field->expected, config::describe_yaml_node(value_node)), "");
      continue;
    }
    if (const auto error = field->apply(options, value); !error.empty()) {
      problems.add(path, value_node, error, fmt::format("write {}", field->expected));
    }
  }
}

// `--set key=value`: the value is YAML (a list, a number, ...), loaded as strictly as the file.
YAML::Node override_value(const std::string& assignment, std::size_t equals) {
  return config::load_yaml_document(assignment.substr(equals + 1), "--set " + assignment);
}

curate::CurateOptions load_recipe(const std::string& file, const std::vector<std::string>& overrides) {
  YAML::Node root = config::load_yaml_file(file, "curate recipe");
  if (!root.IsMap() && !root.IsNull()) fail("{}: a curate recipe is a mapping of sections (input, output, ...)", file);
  std::map<std::string, std::string> override_texts;
  for (const auto& assignment : overrides) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) {
      fail("--set {}: expected key.path=value, e.g. --set gopher_quality.min_doc_words=20", assignment);
    }
    const std::string path = assignment.substr(0, equals);
    if (curate::find_curate_field(path) == nullptr) fail("--set {}: unknown key `{}`. Fix: {}", assignment, path, unknown_key_fix(path));
    if (const auto earlier = override_texts.find(path); earlier != override_texts.end()) {
      fail("--set {}: `{}` is already set by --set {}. Fix: pass each key once", assignment, path, earlier->second);
    }
    config::set_yaml_path(root, path, override_value(assignment, equals));
    override_texts[path] = assignment;
  }
  curate::CurateOptions options;
  Problems problems(file, override_texts);
  if (root.IsMap()) apply_node(root, "", options, problems);
  problems.throw_if_any();
  return options;
}

void apply_flags(const CurateFlags& flags, curate::CurateOptions& options) {
  if (!flags.inputs.empty()) options.input.paths = flags.inputs;
  if (!flags.out.empty()) options.output.dir = flags.out;
  if (!flags.text_field.empty()) options.input.text_field = flags.text_field;
  if (!flags.eval_sets.empty()) {
    options.decontamination.enabled = true;
    options.decontamination.eval_sets = flags.eval_sets;
  }
  if (flags.keep_rejected) options.output.keep_rejected = true;
  if (flags.skip_bad_records) options.input.skip_bad_records = true;
  if (flags.zstd) options.output.zstd = true;
  if (flags.threads >= 0) options.run.threads = flags.threads;
  if (flags.memory_budget_mb > 0) options.run.memory_budget_mb = flags.memory_budget_mb;
  if (flags.quiet) options.run.progress = false;
}

void print_summary(const curate::CurateOptions& options, const curate::CurateSummary& summary) {
  const double cores = summary.ranks * std::max(1, summary.threads);
  const double rate = static_cast<double>(summary.documents_in) / std::max(summary.seconds, 1e-9);
  fmt::print("curated {} -> {} documents in {:.2f} s on {} rank(s) x {} thread(s): {:.0f} docs/s ({:.0f} docs/s/core)\n",
             summary.documents_in, summary.documents_out, summary.seconds, summary.ranks, summary.threads, rate,
             rate / cores);
  fmt::print("{}", summary.report.table());
  if (options.near_dedup.enabled) {
    fmt::print("{}", curate::lsh_curve_table(options.near_dedup.bands, options.near_dedup.rows));
    fmt::print("  candidate pairs {}, clusters {}{}\n", summary.candidate_pairs, summary.clusters,
               summary.spilled_runs ? fmt::format(", {} sorted runs spilled to disk", summary.spilled_runs) : "");
  }
  if (options.model_scoring.enabled && options.model_scoring.keep_fraction < 1.0) {
    fmt::print("perplexity cut-off for keep_fraction {}: {:.4g}\n", options.model_scoring.keep_fraction,
               summary.perplexity_cutoff);
  }
  fmt::print("wrote {} shard(s) and report.json to {}{}\n", summary.shards.size(), options.output.dir,
             options.output.keep_rejected ? " (rejected records in rejected/)" : "");
}

void run_curate(const CurateFlags& flags) {
  curate::CurateOptions options = flags.recipe.empty() ? curate::CurateOptions{} : load_recipe(flags.recipe, flags.overrides);
  if (flags.recipe.empty() && !flags.overrides.empty()) fail("--set needs a recipe: kiln curate RECIPE --set key=value");
  apply_flags(flags, options);
  std::unique_ptr<train::CheckpointDocumentScorer> scorer;
  if (options.model_scoring.enabled && !options.model_scoring.checkpoint.empty()) {
    scorer = std::make_unique<train::CheckpointDocumentScorer>(options.model_scoring.checkpoint, options.model_scoring.max_tokens);
  }
  const auto summary = curate::run_curation(options, scorer.get());
  if (parallel::MpiEnvironment::instance().is_root()) print_summary(options, summary);
}

}  // namespace

void add_curate_command(CLI::App& app) {
  auto flags = std::make_shared<CurateFlags>();
  auto* command = app.add_subcommand(
      "curate",
      "Curate a corpus: normalise, Gopher/C4/FineWeb quality rules, exact and MinHash near-dedup, "
      "decontamination, PII redaction, model scoring -> DIR/part-*.jsonl and DIR/report.json");
  command->add_option("recipe", flags->recipe, "Curate recipe (YAML; see recipes/CURATE.md). Without one, "
                                               "--input and --out run the default stages");
  command->add_option("--set", flags->overrides, "Override a recipe key: --set gopher_quality.min_doc_words=20");
  command->add_option("--input", flags->inputs, "Input files: .jsonl, .jsonl.zst, or text (one document per file)");
  command->add_option("--out", flags->out, "Output directory (part-*.jsonl shards and report.json)");
  command->add_option("--eval-sets", flags->eval_sets, "Evaluation sets to decontaminate against (.jsonl or text)");
  command->add_option("--text-field", flags->text_field, "JSON field holding the text (default: text)");
  command->add_flag("--keep-rejected", flags->keep_rejected, "Also write dropped records with stage and reason to DIR/rejected/");
  command->add_flag("--skip-bad-records", flags->skip_bad_records, "Skip malformed JSON lines (counted) instead of failing");
  command->add_flag("--zstd", flags->zstd, "Write part-*.jsonl.zst");
  command->add_option("--threads", flags->threads, "Threads per rank (0: OMP_NUM_THREADS, else the cores shared among this machine's ranks)");
  command->add_option("--memory-budget-mb", flags->memory_budget_mb, "Dedup records held in memory before spilling to disk");
  command->add_flag("--quiet", flags->quiet, "No progress lines");
  command->callback([flags] { run_curate(*flags); });
}

}  // namespace kiln::cli
