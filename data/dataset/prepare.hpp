#pragma once
// `kiln prepare`: corpus files -> tokenized HDF5 datasets DIR/train.h5 and DIR/val.h5.
//
// Documents stream out of the inputs in order (data/io/document_reader.hpp). Each one is
// assigned to train or val by a hash of (seed, its ordinal), so the split does not depend on
// threads or ranks. Work goes in batches: threads tokenize the documents of a batch, and
// under `mpirun` batch b is tokenized by rank b % world and sent to rank 0, which writes
// both files in input order. Every document is followed by the tokenizer's EOS.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/io/document_reader.hpp"

namespace kiln::data {

struct PrepareOptions {
  std::filesystem::path tokenizer;
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path out_dir;
  std::string text_field = "text";
  double val_fraction = 0.01;
  std::uint64_t seed = 1234;
  BadRecordPolicy on_bad_record = BadRecordPolicy::Fail;
  int threads = 0;                         // 0: OpenMP's default (all cores)
  std::optional<std::string> eos_token;    // default: the tokenizer's end-of-text token
  std::size_t batch_bytes = 4u << 20;      // text per unit of work
  bool progress = true;                    // a progress line on stderr every ~2 s
};

struct SplitSummary {
  std::uint64_t documents = 0;
  std::uint64_t tokens = 0;
};

struct PrepareSummary {
  SplitSummary train;
  SplitSummary val;
  std::uint64_t skipped_records = 0;
  std::uint64_t input_bytes = 0;
  double seconds = 0;
  int ranks = 1;
  int threads = 1;
};

// Deterministic split: true when document `ordinal` goes to validation.
bool is_validation_document(std::uint64_t seed, std::uint64_t ordinal, double val_fraction);

// Runs on every rank; only rank 0 writes files and returns the full summary.
PrepareSummary prepare_datasets(const PrepareOptions& options);

}  // namespace kiln::data
