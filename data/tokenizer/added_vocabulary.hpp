#pragma once
// Added tokens (special or not) and how they are cut out of the raw text before
// pre-tokenization, reproducing `tokenizers`' AddedVocabulary:
//   * ids: a token already in the model vocabulary keeps that id; a new one gets the next id
//     after the model vocabulary (and after earlier added tokens), whatever the file says;
//   * matching: leftmost-longest over all contents, non-overlapping, first the tokens with
//     normalized=false on the whole text, then those with normalized=true in the gaps left;
//   * single_word drops a match touching a word character (Unicode \w) on either side;
//     lstrip / rstrip widen a match over the White_Space around it.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"

namespace kiln::tok {

// Byte trie over the contents of a set of tokens, for leftmost-longest search.
class TokenTrie {
 public:
  void insert(std::string_view content, TokenId id);
  bool empty() const { return nodes_.size() <= 1; }
  // Leftmost-longest match at or after `from`: sets begin/end and returns the token's id.
  std::optional<TokenId> find(std::string_view text, std::size_t from, std::size_t& begin,
                              std::size_t& end) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, std::uint32_t>> children;  // sorted by byte
    std::optional<TokenId> id;
  };
  std::optional<std::uint32_t> child(std::uint32_t node, unsigned char byte) const;
  std::vector<Node> nodes_{1};
  std::vector<bool> starts_token_ = std::vector<bool>(256, false);
};

// One piece of the input after cutting out the added tokens: either an added token's id, or
// text for the pre-tokenizer (`token` empty). Offsets are bytes into the input.
struct TextPiece {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::optional<TokenId> token;
};

class AddedVocabulary {
 public:
  using ModelLookup = std::function<std::optional<TokenId>(std::string_view)>;

  // Adds one token as `tokenizers` does when it loads tokenizer.json; `token.id` is ignored
  // and the assigned id is returned. `model_entries` is the model vocabulary's entry count.
  TokenId add(AddedToken token, const ModelLookup& model_lookup, std::size_t model_entries);
  // Builds the matchers and the sorted list; call once after the last add().
  void finish_adding();

  // Tokens ordered by id (the order tokenizer.json lists them in).
  const std::vector<AddedToken>& tokens() const { return sorted_; }
  std::optional<TokenId> id_of(std::string_view content) const;
  const AddedToken* token_with_id(TokenId id) const;
  bool is_special(TokenId id) const;

  // Cuts `text` (valid UTF-8) into pieces covering it, in order; empty pieces are dropped.
  void split(std::string_view text, std::vector<TextPiece>& pieces) const;

 private:
  void find_matches(std::string_view text, std::size_t offset, const TokenTrie& trie,
                    std::vector<TextPiece>& pieces) const;

  std::unordered_map<std::string, TokenId> id_by_content_;
  std::unordered_map<TokenId, AddedToken> token_by_id_;
  std::vector<AddedToken> plain_list_;    // non-special tokens, in the order added
  std::vector<AddedToken> special_list_;  // special tokens, in the order added
  std::unordered_set<std::string> special_contents_;
  std::vector<AddedToken> sorted_;
  TokenTrie raw_trie_;         // normalized=false: matched on the raw text
  TokenTrie normalized_trie_;  // normalized=true: matched in the gaps
};

}  // namespace kiln::tok
