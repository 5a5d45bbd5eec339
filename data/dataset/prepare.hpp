#pragma once
// `kiln prepare`: corpus files -> tokenized HDF5 datasets DIR/train.h5 and DIR/val.h5.
//
// Documents stream out of the inputs in order (data/io/document_reader.hpp). Each one is
// assigned to train or val by a hash of (seed, its ordinal), so the split does not depend on
// threads or ranks. Work goes in batches: threads tokenize the documents of a batch, and
// under `mpirun` batch b is tokenized by rank b % world and sent to rank 0, which writes
// both files in input order. Every document is followed by the tokenizer's EOS.
//
// With format = chat (SFT data, `kiln prepare --format chat --template NAME`), the inputs are
// chat JSONL; every conversation is rendered with the named template, split by the same hash,
// packed into windows of chat.seq_len tokens with a loss mask on the assistant spans, and the
// template's name is recorded in both files (data/chat/chat_prepare.hpp).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/chat/chat_packing.hpp"
#include "data/chat/conversation.hpp"
#include "data/io/document_reader.hpp"
#include "data/tokenizer/tokenizer.hpp"

namespace kiln::data {

enum class PrepareFormat { text, chat };

// The chat (SFT) path's settings.
struct ChatPrepareOptions {
  std::string template_name;     // "chatml", "llama3"
  std::uint64_t seq_len = 0;     // must equal the recipe's train.seq_len
  bool pack = true;              // several conversations per window
  chat::OverlongPolicy overlong = chat::OverlongPolicy::drop;
  chat::RecordFields fields;
};

struct PrepareOptions {
  PrepareFormat format = PrepareFormat::text;
  ChatPrepareOptions chat;
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
  // Chat format only: conversations written, truncated, dropped, windows, filler per split.
  chat::PackingCounts chat_train;
  chat::PackingCounts chat_val;
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

// Shared by the text and chat paths.
// XXH3 over the input files' checksums, in order (hex).
std::string combined_input_checksum(const std::vector<std::filesystem::path>& inputs);
// --eos when given, else the tokenizer's end-of-text token; kiln::Error naming the flag.
tok::TokenId choose_eos(const tok::Tokenizer& tokenizer, const PrepareOptions& options);
// Copies the tokenizer beside the datasets (unless it already is that file), atomically.
void carry_tokenizer(const PrepareOptions& options);
// The end of every prepare: completes both datasets (a write failure, e.g. a full disk, stops
// here with nothing published), writes tokenizer.json, then renames train.h5 and val.h5 into
// place. A reader never sees a split or a tokenizer.json from a run that failed.
class TokenDatasetWriter;
void publish_prepared(TokenDatasetWriter& train, TokenDatasetWriter& val, const PrepareOptions& options);

}  // namespace kiln::data
