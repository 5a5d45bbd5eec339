#pragma once
// One split of a token dataset in HDF5 (DESIGN.md §8; the README documents the layout):
//   /tokens       uint16 when the vocabulary fits, else uint32; every document followed by EOS
//   /doc_offsets  uint64, n_docs + 1 entries; document d is tokens[doc_offsets[d], doc_offsets[d+1])
//   /loss_mask    uint8, optional (SFT), one entry per token
//   attributes    format version, tokenizer hash, vocab size, special ids, source checksum,
//                 content checksums (verified by `kiln info`)
// The reader never loads /tokens whole: callers read the ranges they need.
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

struct TokenDatasetAttributes {
  std::uint32_t format_version = kTokenDatasetFormatVersion;
  std::string split;                         // "train", "val", ...
  std::string tokenizer_hash;                // hex XXH3 of the canonical tokenizer.json
  std::uint64_t vocab_size = 0;
  std::map<std::string, std::uint32_t> special_ids;  // e.g. {"eos": 50256}
  std::string source_checksum;               // hex XXH3 over the input files, in order
  std::string created_by;                    // "kiln 0.1.0 prepare ..."
};

class TokenDatasetWriter {
 public:
  // Writes to `<path>.tmp`; finish() checksums and renames it to `path` atomically, so a
  // crashed prepare never leaves a file that looks complete.
  TokenDatasetWriter(const std::filesystem::path& path, TokenDatasetAttributes attributes,
                     bool with_loss_mask = false);
  ~TokenDatasetWriter();  // without finish(): removes the temporary file
  TokenDatasetWriter(const TokenDatasetWriter&) = delete;
  TokenDatasetWriter& operator=(const TokenDatasetWriter&) = delete;

  // The tokens of one document, EOS already appended by the caller. Ids must be < vocab_size.
  // loss_mask, when the dataset has one, has the same length as tokens.
  void append_document(std::span<const std::uint32_t> tokens,
                       std::span<const std::uint8_t> loss_mask = {});
  void finish();

  std::uint64_t tokens_written() const;
  std::uint64_t documents_written() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class TokenDataset {
 public:
  // Opens and validates structure and attributes (not content checksums: see verify()).
  // Throws kiln::Error naming the file and what is wrong (missing dataset, wrong type,
  // foreign or truncated file, unsupported format version).
  static TokenDataset open(const std::filesystem::path& path);

  const std::filesystem::path& path() const;
  const TokenDatasetAttributes& attributes() const;
  std::uint64_t num_tokens() const;
  std::uint64_t num_documents() const;
  bool has_loss_mask() const;
  int token_bits() const;  // 16 or 32

  // Reads tokens[begin, begin + out.size()) widened to uint32.
  void read_tokens(std::uint64_t begin, std::span<std::uint32_t> out) const;
  void read_loss_mask(std::uint64_t begin, std::span<std::uint8_t> out) const;
  // doc_offsets[first, first + out.size()).
  void read_doc_offsets(std::uint64_t first, std::span<std::uint64_t> out) const;
  // Start offsets of the documents that begin inside [begin, end), ascending.
  std::vector<std::uint64_t> document_starts_in(std::uint64_t begin, std::uint64_t end) const;

  // Streams the whole file and checks the content checksums and invariants (offsets
  // monotone and ending at num_tokens, ids < vocab_size). Throws kiln::Error on mismatch.
  void verify() const;

  TokenDataset(TokenDataset&&) noexcept;
  TokenDataset& operator=(TokenDataset&&) noexcept;
  ~TokenDataset();

  struct Impl;

 private:
  explicit TokenDataset(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::data
