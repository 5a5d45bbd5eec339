#pragma once
// The BPE model of a byte-level tokenizer: vocabulary, ranked merges, and the merge of one
// pre-tokenized word into token ids, identical to `tokenizers`' BPE::merge_word.
//
// Words arrive as raw bytes. The model never builds the byte-level spelling of a word: each
// byte maps straight to the id of its one-character token, and ignore_merges looks the raw
// bytes up in a table keyed by the raw form of every byte-level token.
//
// Merging: all adjacent pairs that have a merge go into a priority queue ordered by
// (rank, position); the lowest is applied, stale entries are skipped, and the pairs the new
// symbol forms with its neighbours are queued. Results are cached per thread by word.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"

namespace kiln::tok {

// Open-addressing map from a token-id pair to its merge, the hottest lookup of encoding.
class MergeTable {
 public:
  struct Merge {
    std::uint32_t rank;
    TokenId result;
  };
  void reserve(std::size_t count);
  // A later insert of the same pair replaces the earlier one, as in `tokenizers`.
  void insert(TokenId left, TokenId right, Merge merge);
  const Merge* find(TokenId left, TokenId right) const {
    if (slots_.empty()) return nullptr;
    const std::uint64_t key = pack(left, right);
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return &slot.merge;
      if (slot.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  struct Slot {
    std::uint64_t key = kEmpty;
    Merge merge{};
  };
  static std::uint64_t pack(TokenId left, TokenId right) { return (std::uint64_t{left} << 32) | right; }
  std::size_t slot_of(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
  }
  void grow();
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  int shift_ = 64;
  std::size_t size_ = 0;
};

struct BpeOptions {
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool ignore_merges = false;
  bool dropout_written_as_zero = false;  // "dropout": 0.0 (deterministic, like null)
  bool merges_as_pairs = true;           // [a, b] pairs (current schema) or "a b" strings
};

class BpeModel {
 public:
  // `vocab`: byte-level token -> id; `merges`: pairs of tokens, best (rank 0) first.
  // Throws kiln::Error (without the file name, which the caller adds) when a merge names a
  // token that is not in the vocabulary, the unk token is missing, or an id is far beyond the
  // vocabulary's size (see id_limit_for).
  BpeModel(std::vector<std::pair<std::string, TokenId>> vocab,
           std::vector<std::pair<std::string, std::string>> merges, BpeOptions options);
  BpeModel(BpeModel&&) noexcept = default;
  BpeModel& operator=(BpeModel&&) noexcept = default;

  // Ids may leave holes (`tokenizers` accepts any u32), but the largest must stay below
  // id_limit_for(entries): one past it sizes kiln's per-id tables.
  static constexpr std::size_t kIdHoleAllowance = 1024;
  static std::size_t id_limit_for(std::size_t entries);

  // Appends the ids of one word (raw bytes, non-empty).
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  const std::string* id_to_token(TokenId id) const;
  // Entries of the vocabulary (what `tokenizers` calls the model's vocab size).
  std::size_t entries() const { return token_to_id_.size(); }
  // One past the largest id in the vocabulary.
  std::size_t id_limit() const { return id_to_token_.size(); }

  // (token, id) by ascending id, and merges in rank order: what tokenizer.json stores.
  std::vector<std::pair<std::string, TokenId>> vocab_by_id() const;
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }
  const BpeOptions& options() const { return options_; }

 private:
  struct TransparentHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  using TokenMap = std::unordered_map<std::string, TokenId, TransparentHash, std::equal_to<>>;

  // One symbol of a word being merged: a doubly linked list laid over the initial positions.
  // `bytes` == 0 marks a symbol absorbed into its left neighbour.
  struct Symbol {
    TokenId id;
    std::int32_t prev;
    std::int32_t next;
    std::uint32_t bytes;
  };
  static void refuse_ids_beyond_the_vocabulary(const std::vector<std::pair<std::string, TokenId>>& vocab);
  void split_into_bytes(std::string_view word, std::vector<Symbol>& symbols) const;
  void merge_word(std::string_view word, std::vector<TokenId>& out) const;

  TokenMap token_to_id_;
  std::vector<std::optional<std::string>> id_to_token_;
  TokenMap raw_token_to_id_;  // raw bytes of every byte-level token -> id, for ignore_merges
  std::vector<std::pair<std::string, std::string>> merges_;
  MergeTable merge_table_;
  std::vector<std::optional<TokenId>> byte_ids_ = std::vector<std::optional<TokenId>>(256);
  std::optional<TokenId> unk_id_;
  BpeOptions options_;
  std::uint64_t cache_owner_ = 0;  // unique per model: names its per-thread word cache
};

}  // namespace kiln::tok
