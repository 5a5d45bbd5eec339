#include "data/dataset/prepare.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "data/chat/chat_prepare.hpp"
#include "data/dataset/token_dataset.hpp"
#include "data/dataset/verified_dataset.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "parallel/mpi_environment.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/input_file.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/random.hpp"
#include "trainer/core/version.hpp"

namespace kiln::data {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kBatchTag = 17;

// A unit of work: consecutive documents of the input stream.
struct TextBatch {
  std::uint64_t first_ordinal = 0;
  std::vector<std::string> texts;
};

// The tokenized form of a batch: every document's ids (EOS included), back to back.
struct TokenBatch {
  std::vector<std::uint64_t> lengths;
  std::vector<std::uint32_t> ids;
};

std::string serialise(const TokenBatch& batch) {
  const std::uint64_t count = batch.lengths.size();
  std::string bytes(sizeof count + count * sizeof(std::uint64_t) + batch.ids.size() * sizeof(std::uint32_t), '\0');
  char* out = bytes.data();
  std::memcpy(out, &count, sizeof count);
  std::memcpy(out + sizeof count, batch.lengths.data(), count * sizeof(std::uint64_t));
  std::memcpy(out + sizeof count + count * sizeof(std::uint64_t), batch.ids.data(), batch.ids.size() * sizeof(std::uint32_t));
  return bytes;
}

TokenBatch deserialise(const std::string& bytes) {
  TokenBatch batch;
  std::uint64_t count = 0;
  std::memcpy(&count, bytes.data(), sizeof count);
  batch.lengths.resize(count);
  std::memcpy(batch.lengths.data(), bytes.data() + sizeof count, count * sizeof(std::uint64_t));
  const std::size_t header = sizeof count + count * sizeof(std::uint64_t);
  batch.ids.resize((bytes.size() - header) / sizeof(std::uint32_t));
  std::memcpy(batch.ids.data(), bytes.data() + header, batch.ids.size() * sizeof(std::uint32_t));
  return batch;
}

TokenBatch tokenize(const tok::Tokenizer& tokenizer, const TextBatch& batch, tok::TokenId eos) {
  std::vector<std::vector<tok::TokenId>> encoded(batch.texts.size());
  const auto count = static_cast<std::ptrdiff_t>(batch.texts.size());
#pragma omp parallel for schedule(dynamic, 8)
  for (std::ptrdiff_t i = 0; i < count; ++i) {
    encoded[static_cast<std::size_t>(i)] = tokenizer.encode(batch.texts[static_cast<std::size_t>(i)]);
  }
  TokenBatch tokens;
  tokens.lengths.reserve(encoded.size());
  for (auto& ids : encoded) {
    ids.push_back(eos);
    tokens.lengths.push_back(ids.size());
    tokens.ids.insert(tokens.ids.end(), ids.begin(), ids.end());
  }
  return tokens;
}

// Reads the next batch of documents; false when the inputs are exhausted. Ranks that do not
// own the batch only count its documents (they must still see them to keep ordinals aligned).
bool read_batch(DocumentReader& reader, std::size_t batch_bytes, bool keep_text, TextBatch& batch) {
  batch.first_ordinal += batch.texts.size();
  batch.texts.clear();
  std::size_t bytes = 0;
  Document document;
  while (bytes < batch_bytes && reader.next(document)) {
    bytes += document.text.size() + 1;
    batch.texts.push_back(keep_text ? std::move(document.text) : std::string());
  }
  return !batch.texts.empty();
}

TokenDatasetAttributes attributes_for(const std::string& split, const tok::Tokenizer& tokenizer, tok::TokenId eos,
                                      const std::string& source_checksum) {
  TokenDatasetAttributes attributes;
  attributes.split = split;
  attributes.tokenizer_hash = to_hex(tokenizer.content_hash());
  attributes.vocab_size = tokenizer.vocab_size();
  attributes.special_ids["eos"] = eos;
  attributes.source_checksum = source_checksum;
  attributes.created_by = fmt::format("kiln {} prepare", kVersion);
  return attributes;
}

// Rank 0's half: receives or computes each batch in order and writes both splits.
class SplitWriter {
 public:
  SplitWriter(const PrepareOptions& options, const tok::Tokenizer& tokenizer, tok::TokenId eos,
              const std::string& source_checksum)
      : options_(options),
        train_(options.out_dir / "train.h5", attributes_for("train", tokenizer, eos, source_checksum)),
        val_(options.out_dir / "val.h5", attributes_for("val", tokenizer, eos, source_checksum)) {}

  void write(std::uint64_t first_ordinal, const TokenBatch& batch) {
    std::size_t offset = 0;
    for (std::size_t i = 0; i < batch.lengths.size(); ++i) {
      const std::span<const std::uint32_t> ids(batch.ids.data() + offset, batch.lengths[i]);
      offset += batch.lengths[i];
      const bool val = is_validation_document(options_.seed, first_ordinal + i, options_.val_fraction);
      (val ? val_ : train_).append_document(ids);
    }
  }

  void finish(PrepareSummary& summary) {
    publish_prepared(train_, val_, options_);
    summary.train = {train_.documents_written(), train_.tokens_written()};
    summary.val = {val_.documents_written(), val_.tokens_written()};
  }

  std::uint64_t tokens() const { return train_.tokens_written() + val_.tokens_written(); }

 private:
  const PrepareOptions& options_;
  TokenDatasetWriter train_;
  TokenDatasetWriter val_;
};

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void update(std::uint64_t documents, std::uint64_t bytes, std::uint64_t tokens) {
    const auto now = Clock::now();
    if (!enabled_ || now - last_ < std::chrono::seconds(2)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    fmt::print(stderr, "prepare: {} documents, {:.1f} MB read, {} tokens, {:.0f} tokens/s\n", documents,
               static_cast<double>(bytes) / 1e6, tokens, static_cast<double>(tokens) / seconds);
  }

 private:
  bool enabled_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = Clock::now();
};

void validate(const PrepareOptions& options) {
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0)) {
    fail("--val-fraction must be in [0, 1), got {}", options.val_fraction);
  }
  if (options.batch_bytes == 0) fail("batch size must be positive");
}

}  // namespace

std::string combined_input_checksum(const std::vector<std::filesystem::path>& inputs) {
  Xxh3Stream combined;
  for (const auto& input : inputs) {
    const std::uint64_t digest = xxh3_64_file(input);
    combined.update(&digest, sizeof digest);
  }
  return to_hex(combined.digest());
}

tok::TokenId choose_eos(const tok::Tokenizer& tokenizer, const PrepareOptions& options) {
  if (options.eos_token) {
    const auto id = tokenizer.token_to_id(*options.eos_token);
    if (!id) fail("--eos '{}' is not a token of tokenizer '{}'", *options.eos_token, options.tokenizer.string());
    return *id;
  }
  const auto id = tokenizer.eos_id();
  if (!id) {
    fail("tokenizer '{}' has no end-of-text token (<|endoftext|>, <|end_of_text|>, </s>, ...); name one with --eos",
         options.tokenizer.string());
  }
  return *id;
}

void carry_tokenizer(const PrepareOptions& options) {
  // The datasets carry their tokenizer, so training and generation never pair them wrongly.
  const auto carried = options.out_dir / "tokenizer.json";
  std::error_code ignored;
  if (!std::filesystem::equivalent(options.tokenizer, carried, ignored)) {
    write_file_atomically(carried, read_text_file(options.tokenizer, "tokenizer"));
  }
}

void publish_prepared(TokenDatasetWriter& train, TokenDatasetWriter& val, const PrepareOptions& options) {
  train.complete();
  val.complete();
  // Read back before anything is published: costs one read of files still in the page cache
  // (well under 1% of tokenizing them) and catches what the write path could not see.
  verify_for_training(TokenDataset::open(train.temporary_path()), "prepared train");
  verify_for_training(TokenDataset::open(val.temporary_path()), "prepared val");
  carry_tokenizer(options);
  train.publish();
  val.publish();
}

bool is_validation_document(std::uint64_t seed, std::uint64_t ordinal, double val_fraction) {
  const std::uint64_t draw = mix_seed(seed, 0x76616cULL, ordinal);
  return static_cast<double>(draw >> 11) * 0x1.0p-53 < val_fraction;
}

PrepareSummary prepare_datasets(const PrepareOptions& options) {
  validate(options);
  if (options.format == PrepareFormat::chat) return prepare_chat_datasets(options);
  const auto start = Clock::now();
  const auto& mpi = parallel::MpiEnvironment::instance();
  parallel::use_threads(options.threads);

  ReaderOptions reader_options{options.text_field, options.on_bad_record};
  if (!mpi.is_root()) reader_options.max_reported_problems = 0;  // rank 0 reports for everyone
  DocumentReader reader(options.inputs, reader_options);
  const auto tokenizer = tok::Tokenizer::load(options.tokenizer);
  const tok::TokenId eos = choose_eos(tokenizer, options);

  PrepareSummary summary;
  summary.ranks = mpi.world_size();
  summary.threads = omp_get_max_threads();
  std::unique_ptr<SplitWriter> writer;
  if (mpi.is_root()) {
    std::filesystem::create_directories(options.out_dir);
    writer = std::make_unique<SplitWriter>(options, tokenizer, eos, combined_input_checksum(options.inputs));
  }

  ProgressLine progress(options.progress && mpi.is_root());
  TextBatch batch;
  for (std::uint64_t index = 0;; ++index) {
    const int owner = static_cast<int>(index % static_cast<std::uint64_t>(mpi.world_size()));
    if (!read_batch(reader, options.batch_bytes, owner == mpi.rank(), batch)) break;
    if (owner == mpi.rank()) {
      const TokenBatch tokens = tokenize(tokenizer, batch, eos);
      if (mpi.is_root()) {
        writer->write(batch.first_ordinal, tokens);
      } else {
        mpi.send_bytes(serialise(tokens), 0, kBatchTag);
      }
    } else if (mpi.is_root()) {
      writer->write(batch.first_ordinal, deserialise(mpi.receive_bytes(owner, kBatchTag)));
    }
    if (writer) progress.update(reader.report().documents, reader.report().bytes, writer->tokens());
  }

  summary.skipped_records = reader.report().skipped;
  summary.input_bytes = reader.report().bytes;
  if (writer) writer->finish(summary);
  mpi.barrier();
  summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return summary;
}

}  // namespace kiln::data
