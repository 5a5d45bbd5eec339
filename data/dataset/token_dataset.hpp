#pragma once
// One split of a token dataset in HDF5 (DESIGN.md §8; the README documents the layout):
//   /tokens       uint16 when vocab_size <= 65536, else uint32; every document ends with EOS
//   /doc_offsets  uint64, n_docs + 1 entries; document d is tokens[doc_offsets[d], doc_offsets[d+1]),
//                 doc_offsets[0] = 0, doc_offsets[n_docs] = n_tokens
//   /loss_mask    uint8 (0 or 1), optional (SFT), one entry per token
// Root attributes:
//   kiln_format = "kiln.token_dataset" (how foreign HDF5 files are recognised), format_version,
//   split, tokenizer_hash, vocab_size, special_ids (JSON object name -> id), source_checksum,
//   created_by, num_tokens, num_documents, and the content checksums tokens_xxh3,
//   doc_offsets_xxh3, loss_mask_xxh3: XXH3-64 (16 hex digits) over the little-endian bytes as
//   stored, checked by verify() and `kiln info`.
// Storage: every dataset is 1-D, chunked (/tokens in chunks of 256K elements), extendable and
// uncompressed, so reading a window is one hyperslab read of just its bytes; the reader keeps no
// HDF5 chunk cache (see kReaderCacheBytes in token_dataset.cpp for the measurement). The reader
// never loads /tokens whole: callers read the ranges they need.
// Thread safety: every HDF5 call holds one process-wide lock (data/dataset/hdf5_file.hpp), so a
// TokenDataset may be shared by threads; their reads then run one at a time.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kiln::data {

inline constexpr std::uint32_t kTokenDatasetFormatVersion = 1;
inline constexpr const char* kTokenDatasetMarker = "kiln.token_dataset";  // root kiln_format

struct TokenDatasetAttributes {
  std::uint32_t format_version = kTokenDatasetFormatVersion;
  std::string split;                         // "train", "val", ...
  std::string tokenizer_hash;                // hex XXH3 of the canonical tokenizer.json
  std::uint64_t vocab_size = 0;
  std::map<std::string, std::uint32_t> special_ids;  // e.g. {"eos": 50256}
  std::string source_checksum;               // hex XXH3 over the input files, in order
  std::string created_by;                    // "kiln 0.1.0 prepare ..."
  // SFT data: the chat template the conversations were rendered with ("chatml", "llama3");
  // empty for plain text. Stored as the root attribute chat_template only when set, so the
  // exporter can give a served model the prompt format it was trained on.
  std::string chat_template;
};

// Content checksums as stored in the file (16 hex digits each; loss_mask empty when absent).
struct TokenDatasetChecksums {
  std::string tokens;
  std::string doc_offsets;
  std::string loss_mask;
};

// What verify() learned on its way through the file.
struct VerifyReport {
  std::uint64_t tokens_in_loss = 0;  // loss_mask ones; every token when there is no mask
};

class TokenDatasetWriter {
 public:
  // Writes to `<path>.tmp`; only publish() renames it to `path` (fsync + rename + directory
  // fsync), so a crashed or failed prepare never leaves a file that looks complete.
  TokenDatasetWriter(const std::filesystem::path& path, TokenDatasetAttributes attributes,
                     bool with_loss_mask = false);
  ~TokenDatasetWriter();  // unpublished: removes the temporary file
  TokenDatasetWriter(const TokenDatasetWriter&) = delete;
  TokenDatasetWriter& operator=(const TokenDatasetWriter&) = delete;

  // The tokens of one document, EOS already appended by the caller (so never empty). Ids must
  // be < vocab_size. loss_mask, when the dataset has one, has the same length as tokens and
  // holds 0 or 1. A refused document throws kiln::Error and leaves the writer unchanged.
  void append_document(std::span<const std::uint32_t> tokens,
                       std::span<const std::uint8_t> loss_mask = {});
  // finish() = complete() + publish(). Writers of several files complete them all before they
  // publish any, so a failure in the second never leaves the first beside a stale sibling.
  // complete(): flushes, writes the attributes and closes the temporary file, every HDF5
  // result checked (a full disk fails here); nothing is visible under the final name yet.
  void complete();
  // Renames the completed temporary over the final name (trainer/core/atomic_file.hpp).
  void publish();
  void finish();

  const std::filesystem::path& temporary_path() const;  // where it is written until publish()
  std::uint64_t tokens_written() const;
  std::uint64_t documents_written() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class TokenDataset {
 public:
  // Opens and validates structure and attributes (not content checksums: see verify()).
  // Throws kiln::Error naming the file and what is wrong (not a regular file, missing dataset,
  // wrong type, foreign or truncated file, unsupported format version, a special id outside
  // the vocabulary).
  static TokenDataset open(const std::filesystem::path& path);

  const std::filesystem::path& path() const;
  const TokenDatasetAttributes& attributes() const;
  std::uint64_t num_tokens() const;
  std::uint64_t num_documents() const;
  bool has_loss_mask() const;
  int token_bits() const;  // 16 or 32
  const TokenDatasetChecksums& checksums() const;

  // Reads tokens[begin, begin + out.size()) widened to uint32.
  void read_tokens(std::uint64_t begin, std::span<std::uint32_t> out) const;
  void read_loss_mask(std::uint64_t begin, std::span<std::uint8_t> out) const;
  // doc_offsets[first, first + out.size()).
  void read_doc_offsets(std::uint64_t first, std::span<std::uint64_t> out) const;
  // Start offsets of the documents that begin inside [begin, end), ascending; offsets found
  // out of order (a corrupt file never verified) are a kiln::Error, never a wrong boundary. Binary search
  // over a sparse in-memory index (every 1024th doc_offset, built on first use: 8 bytes per
  // 1024 documents) and then one read of the <= 1024 offsets in the block, so the full
  // doc_offsets array is never held in memory.
  std::vector<std::uint64_t> document_starts_in(std::uint64_t begin, std::uint64_t end) const;

  // Streams the whole file once and checks the content checksums and invariants (offsets
  // monotone and ending at num_tokens, ids < vocab_size, loss mask values 0 or 1). Throws
  // kiln::Error naming the field and the index on the first violation.
  VerifyReport verify() const;

  TokenDataset(TokenDataset&&) noexcept;
  TokenDataset& operator=(TokenDataset&&) noexcept;
  ~TokenDataset();

  struct Impl;

 private:
  explicit TokenDataset(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::data
