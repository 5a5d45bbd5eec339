// `kiln score --checkpoint PATH --input F.jsonl [--text-field text] [--logprobs] [--bos] [--device D]`:
// one JSON object per input line, {"tokens": n, "nll": total, "logprobs": [...]}.
#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "trainer/cli/command.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/hf_tokenizer_files.hpp"
#include "trainer/train/checkpoint_model.hpp"
#include "trainer/train/sequence_scorer.hpp"

namespace kiln::cli {

namespace {

struct ScoreFlags {
  std::string checkpoint;
  std::string device = "auto";
  std::string input;
  std::string text_field = "text";
  bool logprobs = false;
  bool bos = false;
};

std::string text_of(const std::string& line, const ScoreFlags& flags, std::uint64_t line_number) {
  const std::string where = fmt::format("{}:{}", flags.input, line_number);
  nlohmann::json record;
  try {
    record = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& error) {  // parse_error, and out_of_range for 1e999
    fail("{}: malformed JSON: {}", where, error.what());
  }
  if (!record.is_object() || !record.contains(flags.text_field)) fail("{}: no \"{}\" field", where, flags.text_field);
  if (!record[flags.text_field].is_string()) fail("{}: field \"{}\" is not a string", where, flags.text_field);
  return record[flags.text_field].get<std::string>();
}

void run_score(const ScoreFlags& flags) {
  auto loaded = train::load_checkpoint_model(flags.checkpoint, flags.device);
  if (!loaded.tokenizer) fail("checkpoint {} carries no tokenizer.json; kiln score needs one", loaded.step_dir.string());
  const auto& tokenizer = *loaded.tokenizer;
  std::optional<tok::TokenId> bos;
  if (flags.bos) {
    bos = interop::special_tokens_of(tokenizer, "").bos;
    if (!bos) fail("--bos: the tokenizer has no beginning-of-text token");
  }
  std::ifstream in(flags.input);
  if (!in) fail("cannot open {}", flags.input);
  train::SequenceScorer scorer(*loaded.model);
  std::string line;
  for (std::uint64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<tok::TokenId> ids;
    if (bos) ids.push_back(*bos);
    const auto encoded = tokenizer.encode(text_of(line, flags, number));
    ids.insert(ids.end(), encoded.begin(), encoded.end());
    train::SequenceScore score;
    try {
      score = scorer.score(ids, flags.logprobs);
    } catch (const Error& error) {
      fail("{}:{}: {}", flags.input, number, error.what());
    }
    nlohmann::ordered_json out = {{"tokens", score.tokens}, {"nll", score.nll}};
    if (flags.logprobs) out["logprobs"] = score.logprobs;
    fmt::print("{}\n", out.dump());
  }
}

}  // namespace

void add_score_command(CLI::App& app) {
  auto flags = std::make_shared<ScoreFlags>();
  auto* command = app.add_subcommand("score", "Per-line token count, negative log-likelihood and log-probabilities, as JSONL");
  command->add_option("--checkpoint", flags->checkpoint, "Step directory, checkpoints/ directory or run directory")
      ->required();
  add_device_option(command, flags->device);
  command->add_option("--input", flags->input, "JSONL file, one text per line")->required();
  command->add_option("--text-field", flags->text_field, "JSON field holding the text")->capture_default_str();
  command->add_flag("--logprobs", flags->logprobs, "Also print log p(t_i | t_<i) for i = 1..n-1");
  command->add_flag("--bos", flags->bos, "Put the tokenizer's beginning-of-text token first");
  command->callback([flags] { run_score(*flags); });
}

}  // namespace kiln::cli
