// `kiln info PATH`: what a token dataset holds, and whether it is intact.
//
// PATH is one split file (train.h5) or a directory written by `kiln prepare` (train.h5 and/or
// val.h5 inside). For each dataset it prints the attributes, counts, document length stats,
// loss-mask coverage and checksums, then runs verify(). Any dataset that cannot be opened or
// fails verification makes the command exit non-zero after every dataset has been reported.
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
#include "trainer/checkpoint/checkpoint_compare.hpp"
#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cli {

namespace {

namespace fs = std::filesystem;
using data::TokenDataset;

constexpr std::uint64_t kScanBlock = 1 << 20;
constexpr const char* kSplitFiles[] = {"train.h5", "val.h5"};

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

std::vector<fs::path> datasets_at(const fs::path& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) return {path};
  std::vector<fs::path> found;
  for (const char* name : kSplitFiles) {
    if (fs::exists(path / name)) found.push_back(path / name);
  }
  if (found.empty()) {
    fail("'{}' is a directory without a token dataset; expected train.h5 and/or val.h5 as "
         "written by `kiln prepare`, or the path of one .h5 split",
         path.string());
  }
  return found;
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
  nlohmann::json report = {{"datasets", nlohmann::json::array()}};
  std::size_t failures = 0;
  for (const auto& path : datasets_at(options.path)) {
    auto info = inspect(path, options.skip_verify);
    if (info.contains("error")) ++failures;
    if (!options.json) print_text(info);
    report["datasets"].push_back(std::move(info));
  }
  if (options.json) fmt::print("{}\n", report.dump(2));
  if (failures == 1 && report["datasets"].size() == 1) {
    fail("{}", report["datasets"][0]["error"].get<std::string>());
  }
  if (failures > 0) {
    fail("{} of {} token datasets under '{}' failed; see above", failures,
         report["datasets"].size(), options.path);
  }
}

// Deterministic little datasets for the CLI test. The first document of train.h5 repeats the
// tokens whose little-endian bytes spell "KILN", so the test can find and flip a stored byte.
void write_test_datasets(const fs::path& directory) {
  fs::create_directories(directory);
  constexpr std::uint32_t kEos = 50256;
  data::TokenDatasetAttributes attributes;
  attributes.split = "train";
  attributes.tokenizer_hash = "0123456789abcdef";
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
  fmt::print("wrote {} and {}\n", (directory / "train.h5").string(),
             (directory / "val.h5").string());
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
