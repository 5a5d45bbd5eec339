#pragma once
// Byte-level BPE tokenizer that reads and writes Hugging Face `tokenizer.json` and encodes
// exactly as the `tokenizers` library does (DESIGN.md §8).
//
// Supported tokenizer.json features (anything else is refused by name when loading):
//   model: BPE (vocab, merges as "a b" strings or [a, b] pairs, ignore_merges, no dropout,
//          byte_fallback false, no unk needed for byte-level)
//   normalizer: null
//   pre_tokenizer: ByteLevel (GPT-2 pattern, use_regex) or Sequence[Split(pattern, Isolated),
//                  ByteLevel(use_regex=false)] (Llama-3)
//   post_processor: null, ByteLevel, or TemplateProcessing (single sequence)
//   decoder: ByteLevel
//   added_tokens: matched in the raw text before pre-tokenization
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::tok {

using TokenId = std::uint32_t;

struct AddedToken {
  TokenId id = 0;
  std::string content;
  bool special = true;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

class Tokenizer {
 public:
  // Throws kiln::Error naming the file and the offending field or unsupported feature.
  static Tokenizer load(const std::filesystem::path& path);
  static Tokenizer from_json(std::string_view json_text, std::string_view source_name);

  // Serialises to the tokenizer.json schema the `tokenizers` library loads.
  std::string to_json() const;
  void save(const std::filesystem::path& path) const;

  // Text to ids. Added tokens are matched first; with add_special_tokens the post-processor's
  // template (e.g. Llama-3's BOS) is applied, as `tokenizers`' encode() does by default.
  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = false) const;
  // Ids to bytes (the ByteLevel decoder). Special tokens are kept unless skip_special_tokens.
  // Out-of-range ids throw kiln::Error.
  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const;

  // One past the largest id, added tokens included.
  std::size_t vocab_size() const;
  std::optional<TokenId> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(TokenId id) const;
  const std::vector<AddedToken>& added_tokens() const;
  // The id that ends a document: the first of the usual end-of-text tokens present
  // (<|endoftext|>, <|end_of_text|>, </s>, <|eot_id|>, <eos>), if any.
  std::optional<TokenId> eos_id() const;
  // XXH3 of the canonical serialisation: identifies the tokenizer inside datasets.
  std::uint64_t content_hash() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class BpeTrainer;
};

}  // namespace kiln::tok
