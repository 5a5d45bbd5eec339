// `kiln info PATH`: what a token dataset holds, and whether it is intact.
//
// PATH is one split file (train.h5) or a directory written by `kiln prepare`. For each dataset
// it prints the attributes, counts, document length stats, loss-mask coverage and checksums,
// then runs verify(). A prepared directory must hold everything prepare writes: train.h5,
// val.h5 (prepare writes it even when the split is empty) and a tokenizer.json that parses and
// whose hash is the datasets' tokenizer_hash. Anything missing, unreadable or failing makes
// the command exit non-zero after every file has been reported.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <fmt/ranges.h>

#include <iostream>

#include "data/dataset/token_dataset.hpp"
#include "data/tokenizer/byte_level.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "trainer/checkpoint/checkpoint_compare.hpp"
#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::cli {

namespace {

namespace fs = std::filesystem;
using data::TokenDataset;

constexpr std::uint64_t kScanBlock = 1 << 20;
// What `kiln prepare` writes into its output directory (data/dataset/prepare.hpp).
constexpr const char* kSplitFiles[] = {"train.h5", "val.h5"};
constexpr const char* kTokenizerFile = "tokenizer.json";

struct DocumentLengths {
  std::uint64_t min = 0;
  double mean = 0;
  std::uint64_t max = 0;
};

struct InfoOptions {
  std::string path;
  bool json = false;
  bool skip_verify = false;
  std::string write_test_dataset;  // hidden: fixtures for tests/cli/info_test.sh
  std::string compare;             // checkpoints: the other checkpoint
  std::string tensors;             // checkpoints: name prefix to compare
  double tolerance = 1e-5;         // checkpoints: largest relative difference accepted
};

DocumentLengths document_lengths(const TokenDataset& dataset) {
  DocumentLengths lengths;
  if (dataset.num_documents() == 0) return lengths;
  lengths.min = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::uint64_t> offsets;
  // Blocks overlap by one offset so every document's two ends are in the same block.
  for (std::uint64_t first = 0; first < dataset.num_documents(); first += kScanBlock) {
    offsets.resize(std::min(kScanBlock, dataset.num_documents() - first) + 1);
    dataset.read_doc_offsets(first, offsets);
    for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
      const std::uint64_t length = offsets[i + 1] - offsets[i];
      lengths.min = std::min(lengths.min, length);
      lengths.max = std::max(lengths.max, length);
    }
  }
  lengths.mean = static_cast<double>(dataset.num_tokens()) /
                 static_cast<double>(dataset.num_documents());
  return lengths;
}

std::uint64_t masked_in_tokens(const TokenDataset& dataset) {
  std::uint64_t ones = 0;
  std::vector<std::uint8_t> block;
  for (std::uint64_t begin = 0; begin < dataset.num_tokens(); begin += kScanBlock) {
    block.resize(std::min(kScanBlock, dataset.num_tokens() - begin));
    dataset.read_loss_mask(begin, block);
    ones += static_cast<std::uint64_t>(std::count(block.begin(), block.end(), std::uint8_t{1}));
  }
  return ones;
}

nlohmann::json describe(const TokenDataset& dataset) {
  const auto& attributes = dataset.attributes();
  const auto lengths = document_lengths(dataset);
  nlohmann::json info = {
      {"path", dataset.path().string()},
      {"format", data::kTokenDatasetMarker},
      {"format_version", attributes.format_version},
      {"split", attributes.split},
      {"created_by", attributes.created_by},
      {"tokenizer_hash", attributes.tokenizer_hash},
      {"vocab_size", attributes.vocab_size},
      {"special_ids", attributes.special_ids},
      {"token_dtype", fmt::format("uint{}", dataset.token_bits())},
      {"num_tokens", dataset.num_tokens()},
      {"num_documents", dataset.num_documents()},
      {"doc_length", {{"min", lengths.min}, {"mean", lengths.mean}, {"max", lengths.max}}},
      {"source_checksum", attributes.source_checksum},
      {"checksums",
       {{"tokens", dataset.checksums().tokens}, {"doc_offsets", dataset.checksums().doc_offsets}}},
  };
  if (dataset.has_loss_mask()) {
    const std::uint64_t ones = masked_in_tokens(dataset);
    info["loss_mask"] = {{"tokens_in_loss", ones},
                         {"coverage", dataset.num_tokens() == 0
                                          ? 0.0
                                          : static_cast<double>(ones) /
                                                static_cast<double>(dataset.num_tokens())}};
    info["checksums"]["loss_mask"] = dataset.checksums().loss_mask;
  }
  return info;
}

std::string special_ids_text(const nlohmann::json& special_ids) {
  std::string text;
  for (const auto& [name, id] : special_ids.items()) {
    text += fmt::format("{}{}={}", text.empty() ? "" : ", ", name, id.get<std::uint32_t>());
  }
  return text.empty() ? "(none)" : text;
}

void print_text(const nlohmann::json& info) {
  fmt::print("{}\n", info.at("path").get<std::string>());
  if (info.contains("error") && !info.contains("split")) {
    fmt::print("  error            {}\n", info.at("error").get<std::string>());
    return;
  }
  const auto row = [](const char* label, const std::string& value) {
    fmt::print("  {:<17}{}\n", label, value);
  };
  row("format", fmt::format("{} v{}", info.at("format").get<std::string>(),
                            info.at("format_version").get<std::uint32_t>()));
  row("split", info.at("split").get<std::string>());
  row("created by", info.at("created_by").get<std::string>());
  row("tokenizer hash", info.at("tokenizer_hash").get<std::string>());
  row("vocab size", std::to_string(info.at("vocab_size").get<std::uint64_t>()));
  row("special ids", special_ids_text(info.at("special_ids")));
  row("token dtype", info.at("token_dtype").get<std::string>());
  row("tokens", std::to_string(info.at("num_tokens").get<std::uint64_t>()));
  row("documents", std::to_string(info.at("num_documents").get<std::uint64_t>()));
  const auto& lengths = info.at("doc_length");
  row("doc length", fmt::format("min {} / mean {:.1f} / max {}", lengths.at("min").get<std::uint64_t>(),
                                lengths.at("mean").get<double>(), lengths.at("max").get<std::uint64_t>()));
  if (info.contains("loss_mask")) {
    const auto& mask = info.at("loss_mask");
    row("loss mask", fmt::format("{:.2f}% of tokens ({} in loss)",
                                 100.0 * mask.at("coverage").get<double>(),
                                 mask.at("tokens_in_loss").get<std::uint64_t>()));
  } else {
    row("loss mask", "absent");
  }
  row("source checksum", info.at("source_checksum").get<std::string>());
  for (const auto& [name, value] : info.at("checksums").items()) {
    row(fmt::format("xxh3 {}", name).c_str(), value.get<std::string>());
  }
  if (info.contains("verified")) {
    row("verify", info.at("verified").get<bool>()
                      ? std::string("verified")
                      : fmt::format("FAILED: {}", info.at("error").get<std::string>()));
  } else {
    row("verify", "skipped");
  }
}

bool is_prepared_directory(const fs::path& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) return false;
  for (const char* name : kSplitFiles) {
    if (fs::exists(path / name, error)) return true;
  }
  fail("'{}' is a directory without a token dataset; expected train.h5 and/or val.h5 as "
       "written by `kiln prepare`, or the path of one .h5 split",
       path.string());
}

nlohmann::json missing_file(const fs::path& path) {
  return {{"path", path.string()},
          {"error", fmt::format("'{}' is missing; a directory written by `kiln prepare` holds {}, {} and {}",
                                path.string(), kSplitFiles[0], kSplitFiles[1], kTokenizerFile)}};
}

// The tokenizer a prepared directory carries: it must parse, and it must be the one the
// datasets were tokenized with, or training and generation would pair them wrongly.
nlohmann::json inspect_tokenizer(const fs::path& path, const nlohmann::json& datasets) {
  if (!fs::exists(path)) return missing_file(path);
  nlohmann::json info = {{"path", path.string()}, {"verified", false}};
  try {
    const auto tokenizer = tok::Tokenizer::from_json(read_text_file(path, "tokenizer"), path.string());
    const std::string hash = to_hex(tokenizer.content_hash());
    info["tokenizer_hash"] = hash;
    info["vocab_size"] = tokenizer.vocab_size();
    for (const auto& dataset : datasets) {
      if (!dataset.contains("tokenizer_hash") || dataset.at("tokenizer_hash") == hash) continue;
      fail("tokenizer '{}' has hash {}, but {} was tokenized with {}; the directory mixes files of different "
           "prepare runs",
           path.string(), hash, dataset.at("path").get<std::string>(),
           dataset.at("tokenizer_hash").get<std::string>());
    }
    info["verified"] = true;
  } catch (const Error& error) {
    info["error"] = error.what();
  }
  return info;
}

void print_tokenizer_text(const nlohmann::json& info) {
  fmt::print("{}\n", info.at("path").get<std::string>());
  if (info.contains("tokenizer_hash")) {
    fmt::print("  {:<17}{}\n", "tokenizer hash", info.at("tokenizer_hash").get<std::string>());
    fmt::print("  {:<17}{}\n", "vocab size", info.at("vocab_size").get<std::uint64_t>());
  }
  fmt::print("  {:<17}{}\n", "verify",
             info.value("verified", false) ? std::string("verified (parses; its hash is the datasets' tokenizer_hash)")
                                           : fmt::format("FAILED: {}", info.at("error").get<std::string>()));
}

// Opens, describes and verifies one dataset; failures land in the returned JSON.
nlohmann::json inspect(const fs::path& path, bool skip_verify) {
  nlohmann::json info;
  try {
    const auto dataset = TokenDataset::open(path);
    info = describe(dataset);
    if (!skip_verify) {
      info["verified"] = false;
      dataset.verify();
      info["verified"] = true;
    }
  } catch (const Error& error) {
    info["path"] = path.string();
    info["error"] = error.what();
  }
  return info;
}

void write_test_datasets(const fs::path& directory);

// A checkpoint: its metadata and tensors, or (with --compare) how far each tensor is from the
// same tensor of another checkpoint.
void run_checkpoint_info(const InfoOptions& options) {
  const auto found = checkpoint::resolve_checkpoint(options.path, std::cerr);
  const checkpoint::CheckpointReader reader(found.dir);
  const auto& meta = reader.meta();
  if (options.compare.empty()) {
    fmt::print("{}\n  step {} | tokens seen {} | written by dp={} tp={} pp={} zero={} | {}\n", found.dir.string(),
               meta.step, meta.tokens_seen, meta.layout.dp, meta.layout.tp, meta.layout.pp, meta.layout.zero,
               meta.created_by);
    for (const auto& name : reader.tensor_names()) {
      const auto& tensor = reader.tensor(name);
      fmt::print("  {:<56} [{}] in {} piece(s)\n", name, fmt::join(tensor.global_shape, ", "), tensor.pieces.size());
    }
    fmt::print("  verify           verified (checksums of every file)\n");
    return;
  }
  const auto other = checkpoint::resolve_checkpoint(options.compare, std::cerr);
  const auto differences = checkpoint::compare_checkpoints(reader, checkpoint::CheckpointReader(other.dir), options.tensors);
  if (differences.empty()) fail("no tensor of {} starts with '{}'", found.dir.string(), options.tensors);
  double worst = 0.0;
  for (const auto& difference : differences) {
    worst = std::max(worst, difference.relative);
    fmt::print("  {:<56} {}\n", difference.name,
               difference.problem.empty() ? fmt::format("rel {:.3e}", difference.relative) : difference.problem);
  }
  fmt::print("{} tensors, largest relative difference {:.3e} (tolerance {:.1e})\n", differences.size(), worst,
             options.tolerance);
  if (worst > options.tolerance) {
    fail("{} and {} differ by {:.3e} > {:.1e}", found.dir.string(), other.dir.string(), worst, options.tolerance);
  }
}

void run_info(const InfoOptions& options) {
  if (!options.write_test_dataset.empty()) {
    write_test_datasets(options.write_test_dataset);
    return;
  }
  if (options.path.empty()) fail("kiln info: give the PATH of a token dataset, directory or checkpoint");
  if (checkpoint::looks_like_checkpoint(options.path)) {
    run_checkpoint_info(options);
    return;
  }
  const fs::path path = options.path;
  const bool directory = is_prepared_directory(path);
  nlohmann::json report = {{"datasets", nlohmann::json::array()}};
  std::size_t failures = 0;
  const auto add = [&](nlohmann::json info) {
    if (info.contains("error")) ++failures;
    if (!options.json) print_text(info);
    report["datasets"].push_back(std::move(info));
  };
  if (!directory) {
    add(inspect(path, options.skip_verify));
  } else {
    for (const char* name : kSplitFiles) {
      add(fs::exists(path / name) ? inspect(path / name, options.skip_verify) : missing_file(path / name));
    }
    report["tokenizer"] = inspect_tokenizer(path / kTokenizerFile, report["datasets"]);
    if (report["tokenizer"].contains("error")) ++failures;
    if (!options.json) print_tokenizer_text(report["tokenizer"]);
  }
  if (options.json) fmt::print("{}\n", report.dump(2));
  if (failures == 1 && !directory) fail("{}", report["datasets"][0]["error"].get<std::string>());
  if (failures > 0) {
    fail("{} of {} files of the prepared directory '{}' failed; see above", failures,
         report["datasets"].size() + 1, options.path);
  }
}

// A byte-level BPE tokenizer.json with GPT-2's vocabulary size: the 256 byte tokens, filler
// tokens up to id 50255 and <|endoftext|> = 50256. Enough for `kiln info` to parse and hash.
std::string test_tokenizer_json(std::uint32_t eos) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int byte = 0; byte < 256; ++byte) {
    vocab[tok::byte_level::encode(std::string(1, static_cast<char>(byte)))] = byte;
  }
  for (std::uint32_t id = 256; id < eos; ++id) vocab[fmt::format("fill{}", id)] = id;
  vocab["<|endoftext|>"] = eos;
  const nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                                     {"use_regex", true}};
  return nlohmann::json{
      {"version", "1.0"},
      {"added_tokens", {{{"id", eos}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", true}}}},
      {"pre_tokenizer", byte_level},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
  }.dump();
}

// Deterministic little datasets for the CLI test, with their tokenizer.json: a complete
// prepared directory. The first document of train.h5 repeats the tokens whose little-endian
// bytes spell "KILN", so the test can find and flip a stored byte.
void write_test_datasets(const fs::path& directory) {
  fs::create_directories(directory);
  constexpr std::uint32_t kEos = 50256;
  const std::string tokenizer_json = test_tokenizer_json(kEos);
  write_file_atomically(directory / kTokenizerFile, tokenizer_json);
  data::TokenDatasetAttributes attributes;
  attributes.split = "train";
  attributes.tokenizer_hash = to_hex(tok::Tokenizer::from_json(tokenizer_json, "test tokenizer").content_hash());
  attributes.vocab_size = 50257;
  attributes.special_ids = {{"eos", kEos}};
  attributes.source_checksum = "fedcba9876543210";
  attributes.created_by = "kiln info --write-test-dataset";
  {
    data::TokenDatasetWriter writer(directory / "train.h5", attributes);
    std::vector<std::uint32_t> marker;
    for (int i = 0; i < 64; ++i) marker.insert(marker.end(), {0x494bu, 0x4e4cu});  // "KI" "LN"
    marker.push_back(kEos);
    writer.append_document(marker);
    for (std::uint32_t doc = 0; doc < 200; ++doc) {
      std::vector<std::uint32_t> tokens(5 + doc % 37);
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = static_cast<std::uint32_t>((doc * 7919 + i * 104729) % kEos);
      }
      tokens.back() = kEos;
      writer.append_document(tokens);
    }
    writer.finish();
  }
  attributes.split = "val";
  data::TokenDatasetWriter writer(directory / "val.h5", attributes, /*with_loss_mask=*/true);
  for (std::uint32_t doc = 0; doc < 20; ++doc) {
    std::vector<std::uint32_t> tokens(8, doc + 1);
    tokens.back() = kEos;
    const std::vector<std::uint8_t> mask = {0, 0, 0, 0, 1, 1, 1, 1};
    writer.append_document(tokens, mask);
  }
  writer.finish();
  fmt::print("wrote {}, {} and {}\n", (directory / "train.h5").string(), (directory / "val.h5").string(),
             (directory / kTokenizerFile).string());
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  auto* command = app.add_subcommand(
      "info", "Describe and verify a token dataset (a .h5 split or a prepared directory) or a checkpoint");
  command->add_option("path", options->path,
                      "token dataset file, directory with train.h5/val.h5, or checkpoint (step, checkpoints/ or run dir)");
  command->add_flag("--json", options->json, "print machine-readable JSON");
  command->add_option("--compare", options->compare,
                      "checkpoints: compare every tensor with this other checkpoint (any layout)");
  command->add_option("--tensors", options->tensors, "with --compare: only tensors whose name starts with this");
  command->add_option("--tolerance", options->tolerance,
                      "with --compare: fail when a tensor's relative difference exceeds this")
      ->capture_default_str();
  command->add_flag("--skip-verify", options->skip_verify,
                    "do not stream the file to check checksums (fast)");
  command->add_option("--write-test-dataset", options->write_test_dataset)
      ->group("");  // hidden: generates fixtures for tests/cli/info_test.sh
  command->callback([options] { run_info(*options); });
}

}  // namespace kiln::cli
