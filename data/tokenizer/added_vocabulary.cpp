#include "data/tokenizer/added_vocabulary.hpp"

#include <algorithm>

#include "data/tokenizer/regex.hpp"
#include "data/tokenizer/utf8.hpp"

namespace kiln::tok {

namespace {

// Unicode White_Space, what Rust regex's \s (used by `tokenizers` for lstrip/rstrip) matches.
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Rust regex's Unicode \w, which `tokenizers` uses for single_word.
bool is_word_char(std::string_view text, std::size_t begin, std::size_t end) {
  static const Regex word = Regex::from_pcre2(
      "^[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]$");
  std::size_t match_begin = 0;
  std::size_t match_end = 0;
  return word.find(text.substr(begin, end - begin), 0, match_begin, match_end);
}

bool ends_with_word(std::string_view text, std::size_t end) {
  if (end == 0) return false;
  std::size_t start = 0;
  utf8::previous(text, end, start);
  return is_word_char(text, start, end);
}

bool starts_with_word(std::string_view text, std::size_t begin) {
  if (begin >= text.size()) return false;
  std::size_t end = begin;
  utf8::next(text, end);
  return is_word_char(text, begin, end);
}

// Start of the run of white space that ends at `end`.
std::size_t white_space_start(std::string_view text, std::size_t end) {
  while (end > 0) {
    std::size_t start = 0;
    if (!is_white_space(utf8::previous(text, end, start))) break;
    end = start;
  }
  return end;
}

// End of the run of white space that starts at `begin`.
std::size_t white_space_end(std::string_view text, std::size_t begin) {
  while (begin < text.size()) {
    std::size_t next = begin;
    if (!is_white_space(utf8::next(text, next))) break;
    begin = next;
  }
  return begin;
}

}  // namespace

// ---- TokenTrie ------------------------------------------------------------------------------

std::optional<std::uint32_t> TokenTrie::child(std::uint32_t node, unsigned char byte) const {
  const auto& children = nodes_[node].children;
  const auto it = std::lower_bound(children.begin(), children.end(), byte,
                                   [](const auto& entry, unsigned char b) { return entry.first < b; });
  if (it == children.end() || it->first != byte) return std::nullopt;
  return it->second;
}

void TokenTrie::insert(std::string_view content, TokenId id) {
  if (content.empty()) return;
  std::uint32_t node = 0;
  for (const char c : content) {
    const auto byte = static_cast<unsigned char>(c);
    if (auto next = child(node, byte)) {
      node = *next;
      continue;
    }
    const auto created = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
    auto& children = nodes_[node].children;
    children.insert(std::lower_bound(children.begin(), children.end(), std::make_pair(byte, 0U)),
                    {byte, created});
    node = created;
  }
  if (!nodes_[node].id) nodes_[node].id = id;
  starts_token_[static_cast<unsigned char>(content[0])] = true;
}

std::optional<TokenId> TokenTrie::find(std::string_view text, std::size_t from, std::size_t& begin,
                                       std::size_t& end) const {
  for (std::size_t start = from; start < text.size(); ++start) {
    if (!starts_token_[static_cast<unsigned char>(text[start])]) continue;
    std::optional<TokenId> found;
    std::uint32_t node = 0;
    for (std::size_t pos = start; pos < text.size(); ++pos) {
      const auto next = child(node, static_cast<unsigned char>(text[pos]));
      if (!next) break;
      node = *next;
      if (nodes_[node].id) {
        found = nodes_[node].id;
        end = pos + 1;
      }
    }
    if (found) {
      begin = start;
      return found;
    }
  }
  return std::nullopt;
}

// ---- AddedVocabulary ------------------------------------------------------------------------

namespace {

bool same_token(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.special == b.special && a.single_word == b.single_word &&
         a.lstrip == b.lstrip && a.rstrip == b.rstrip && a.normalized == b.normalized;
}

}  // namespace

TokenId AddedVocabulary::add(AddedToken token, const ModelLookup& model_lookup,
                             std::size_t model_entries) {
  if (token.content.empty()) return token.id;
  if (token.special && special_contents_.insert(token.content).second) special_list_.push_back(token);
  for (const auto& [id, existing] : token_by_id_) {
    if (same_token(existing, token)) return id;
  }
  std::optional<TokenId> id = id_of(token.content);
  if (!id) id = model_lookup(token.content);
  if (!id) {
    // The next id after the model's entries and every added token so far.
    TokenId next = static_cast<TokenId>(model_entries);
    for (const auto& [content, added_id] : id_by_content_) {
      if (added_id >= model_entries || model_entries == 0) next = std::max(next, added_id + 1);
    }
    id = next;
  }
  token.id = *id;
  id_by_content_[token.content] = *id;
  token_by_id_[*id] = token;
  if (!special_contents_.contains(token.content)) plain_list_.push_back(token);
  return *id;
}

void AddedVocabulary::finish_adding() {
  raw_trie_ = TokenTrie{};
  normalized_trie_ = TokenTrie{};
  for (const auto* list : {&special_list_, &plain_list_}) {
    for (const auto& token : *list) {
      (token.normalized ? normalized_trie_ : raw_trie_).insert(token.content, id_by_content_.at(token.content));
    }
  }
  sorted_.clear();
  for (const auto& [id, token] : token_by_id_) sorted_.push_back(token);
  std::sort(sorted_.begin(), sorted_.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
}

std::optional<TokenId> AddedVocabulary::id_of(std::string_view content) const {
  const auto it = id_by_content_.find(std::string(content));
  if (it == id_by_content_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::token_with_id(TokenId id) const {
  const auto it = token_by_id_.find(id);
  return it == token_by_id_.end() ? nullptr : &it->second;
}

bool AddedVocabulary::is_special(TokenId id) const {
  const auto* token = token_with_id(id);
  return token != nullptr && special_contents_.contains(token->content);
}

void AddedVocabulary::find_matches(std::string_view text, std::size_t offset, const TokenTrie& trie,
                                   std::vector<TextPiece>& pieces) const {
  std::size_t consumed = 0;  // end of the last piece emitted
  std::size_t search_from = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
  while (search_from < text.size()) {
    const auto id = trie.find(text, search_from, begin, end);
    if (!id) break;
    search_from = end;  // matches never overlap, even when one is discarded below
    const AddedToken& token = token_by_id_.at(*id);
    if (token.single_word && (ends_with_word(text, begin) || starts_with_word(text, end))) continue;
    if (token.lstrip) begin = std::max(white_space_start(text, begin), consumed);
    if (token.rstrip) end = white_space_end(text, end);
    if (consumed < begin) pieces.push_back({offset + consumed, offset + begin, std::nullopt});
    pieces.push_back({offset + begin, offset + end, *id});
    consumed = end;
  }
  if (consumed < text.size()) pieces.push_back({offset + consumed, offset + text.size(), std::nullopt});
}

void AddedVocabulary::split(std::string_view text, std::vector<TextPiece>& pieces) const {
  pieces.clear();
  if (text.empty()) return;
  if (raw_trie_.empty() && normalized_trie_.empty()) {
    pieces.push_back({0, text.size(), std::nullopt});
    return;
  }
  std::vector<TextPiece> first_pass;
  find_matches(text, 0, raw_trie_, first_pass);
  if (normalized_trie_.empty()) {
    pieces = std::move(first_pass);
    return;
  }
  for (const auto& piece : first_pass) {
    if (piece.token) {
      pieces.push_back(piece);
    } else {
      find_matches(text.substr(piece.begin, piece.end - piece.begin), piece.begin, normalized_trie_, pieces);
    }
  }
}

}  // namespace kiln::tok
