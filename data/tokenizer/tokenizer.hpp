#pragma once
// Byte-level BPE tokenizer that reads and writes Hugging Face `tokenizer.json` and encodes
// exactly as the `tokenizers` library does (DESIGN.md §8).
//
// Supported tokenizer.json features (anything else is refused by name when loading):
//   model: BPE (vocab, merges as "a b" strings or [a, b] pairs, ignore_merges, unk_token and
//          fuse_unk; dropout null or 0; no byte_fallback, continuing_subword_prefix or
//          end_of_word_suffix)
//   normalizer: null; truncation, padding: null
//   pre_tokenizer: ByteLevel (GPT-2 pattern, add_prefix_space, use_regex) or
//                  Sequence[Split(pattern, behavior, invert)..., ByteLevel] (e.g. Llama-3);
//                  patterns are Oniguruma syntax, run with PCRE2 (see regex.hpp, split.hpp)
//   post_processor: null, ByteLevel, TemplateProcessing (single sequence) or a Sequence of them
//   decoder: ByteLevel (or null: tokens joined by spaces, as `tokenizers` does)
//   added_tokens: matched in the raw text before pre-tokenization, leftmost-longest, with the
//                 special, lstrip, rstrip, single_word and normalized flags; ids follow
//                 `tokenizers`' rules (see added_vocabulary.hpp)
//
// Text that is not valid UTF-8 is encoded as Python's bytes.decode("utf-8", errors="replace")
// would make it (one U+FFFD per maximal ill-formed subpart): `tokenizers` only ever sees such
// Python strings, so kiln gives the ids it would give them.
//
// A Tokenizer is immutable after loading; encode and decode may be called from many threads
// at once (word caches and regex scratch are per thread).
//
// Files: tokenizer.cpp (this API), tokenizer_json.* (the file format), added_vocabulary.*,
// pre_tokenizer.*, regex.*, bpe_model.*, post_processor.*, byte_level.*, utf8.*, bpe_trainer.*.
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
  // Throws kiln::Error naming the file and the offending field or unsupported feature; a path
  // that is not a regular file (a directory, a FIFO, /dev/zero) is refused before reading.
  static Tokenizer load(const std::filesystem::path& path);
  static Tokenizer from_json(std::string_view json_text, std::string_view source_name);

  // Serialises to the tokenizer.json schema the `tokenizers` library loads.
  std::string to_json() const;
  // Atomically: a failed save leaves the previous file (or none), never a truncated one.
  void save(const std::filesystem::path& path) const;

  // Text to ids. Added tokens are matched first; with add_special_tokens the post-processor's
  // template (e.g. Llama-3's BOS) is applied, as `tokenizers`' encode() does by default.
  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = false) const;
  // Ids to bytes (the ByteLevel decoder), raw: a cut through a multi-byte character stays
  // cut rather than becoming U+FFFD. Special tokens are kept unless skip_special_tokens.
  // Ids outside the vocabulary throw kiln::Error. decode(encode(x)) == x for valid UTF-8 x
  // (unless add_prefix_space added a space, which `tokenizers` keeps too).
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
