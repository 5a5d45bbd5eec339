#include "data/curate/gopher_repetition.hpp"

#include <xxhash.h>

#include "data/curate/hash_counter.hpp"
#include "data/curate/text_units.hpp"

namespace kiln::curate {

namespace {

bool on(double threshold) { return threshold > 0; }

// Word hashes and code-point lengths of one document, shared by every n.
struct WordTable {
  std::vector<std::uint64_t> hashes;
  std::vector<std::uint32_t> lengths;
  std::vector<std::uint64_t> ngram;  // hash of the n-gram starting at each word, for the current n
};

void fill_words(std::string_view text, WordTable& table) {
  thread_local std::vector<std::string_view> tokens;
  word_tokens(text, tokens);
  table.hashes.resize(tokens.size());
  table.lengths.resize(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    table.hashes[i] = XXH3_64bits(tokens[i].data(), tokens[i].size());
    table.lengths[i] = static_cast<std::uint32_t>(code_points(tokens[i]));
  }
  table.ngram = table.hashes;
}

// Length of the n-gram starting at word i: " ".join(words[i : i + n]) with the separating
// spaces for the top n-gram rule, "".join(...) without them for the duplicated n-gram rule,
// as the reference measures each.
enum class Joined { WithSpaces, WithoutSpaces };
std::size_t ngram_chars(const WordTable& table, std::size_t i, std::size_t n, Joined joined) {
  std::size_t chars = joined == Joined::WithSpaces ? n - 1 : 0;
  for (std::size_t k = i; k < i + n; ++k) chars += table.lengths[k];
  return chars;
}

// Advances table.ngram from (n-1)-grams to n-grams; the table has words.size() - n + 1 of them.
void extend_ngrams(WordTable& table, std::size_t n) {
  const std::size_t count = table.hashes.size() - n + 1;
  for (std::size_t i = 0; i < count; ++i) table.ngram[i] = extend_hash(table.ngram[i], table.hashes[i + n - 1]);
  table.ngram.resize(count);
}

// Characters of the most frequent n-gram times its count. An n-gram seen once counts too,
// as in the reference: on a document of a few words one 2-gram is a large fraction of it
// (such documents fail the quality rules' length rule first in the default chain).
std::size_t top_ngram_chars(const WordTable& table, std::size_t n) {
  thread_local HashCounter counter;
  counter.reset(table.ngram.size());
  std::uint32_t best = 0;
  std::size_t best_at = 0;
  for (std::size_t i = 0; i < table.ngram.size(); ++i) {
    const std::uint32_t count = counter.add(table.ngram[i]);
    if (count > best) {
      best = count;
      best_at = i;
    }
  }
  return best * ngram_chars(table, best_at, n, Joined::WithSpaces);
}

// Characters in repeated n-grams, scanning every n-gram left to right and jumping past each
// repeat so that overlapping repeats are not counted twice (the reference's procedure).
std::size_t duplicated_ngram_chars(const WordTable& table, std::size_t n) {
  thread_local HashCounter seen;
  seen.reset(table.ngram.size());
  std::size_t chars = 0;
  std::size_t i = 0;
  while (i < table.ngram.size()) {
    if (seen.add(table.ngram[i]) > 1) {
      chars += ngram_chars(table, i, n, Joined::WithoutSpaces);
      i += n;
    } else {
      ++i;
    }
  }
  return chars;
}

std::string_view check_pieces(std::string_view text, double total_chars, const GopherRepetitionOptions& options) {
  thread_local std::vector<std::string_view> pieces;
  split_paragraphs(text, pieces);
  Duplicates duplicates = find_duplicates(pieces);
  if (on(options.max_dup_paragraph_fraction) &&
      static_cast<double>(duplicates.count) / static_cast<double>(pieces.size()) > options.max_dup_paragraph_fraction) {
    return "dup_para_frac";
  }
  if (on(options.max_dup_paragraph_char_fraction) &&
      static_cast<double>(duplicates.chars) / total_chars > options.max_dup_paragraph_char_fraction) {
    return "dup_para_char_frac";
  }
  split_line_runs(text, pieces);
  duplicates = find_duplicates(pieces);
  if (on(options.max_dup_line_fraction) &&
      static_cast<double>(duplicates.count) / static_cast<double>(pieces.size()) > options.max_dup_line_fraction) {
    return "dup_line_frac";
  }
  if (on(options.max_dup_line_char_fraction) &&
      static_cast<double>(duplicates.chars) / total_chars > options.max_dup_line_char_fraction) {
    return "dup_line_char_frac";
  }
  return "";
}

// Reason names are fixed strings so verdicts can be string_views without allocation.
std::string_view top_reason(int n) {
  static const char* const kNames[] = {"top_0_gram", "top_1_gram", "top_2_gram", "top_3_gram", "top_4_gram",
                                       "top_5_gram", "top_6_gram", "top_7_gram", "top_8_gram", "top_9_gram",
                                       "top_10_gram"};
  return n >= 0 && n <= 10 ? kNames[n] : "top_n_gram";
}
std::string_view dup_reason(int n) {
  static const char* const kNames[] = {"duplicated_0_n_grams", "duplicated_1_n_grams", "duplicated_2_n_grams",
                                       "duplicated_3_n_grams", "duplicated_4_n_grams", "duplicated_5_n_grams",
                                       "duplicated_6_n_grams", "duplicated_7_n_grams", "duplicated_8_n_grams",
                                       "duplicated_9_n_grams", "duplicated_10_n_grams"};
  return n >= 0 && n <= 10 ? kNames[n] : "duplicated_n_grams";
}

}  // namespace

Duplicates find_duplicates(const std::vector<std::string_view>& pieces) {
  thread_local HashCounter seen;
  seen.reset(pieces.size());
  Duplicates duplicates;
  for (std::string_view piece : pieces) {
    if (seen.add(XXH3_64bits(piece.data(), piece.size())) > 1) {
      ++duplicates.count;
      duplicates.chars += code_points(piece);
    }
  }
  return duplicates;
}

std::string_view gopher_repetition_check(std::string_view text, const GopherRepetitionOptions& options) {
  const auto total_chars = static_cast<double>(code_points(text));
  if (total_chars == 0) return "";  // empty text: nothing repeats (other rules judge length)
  if (const auto reason = check_pieces(text, total_chars, options); !reason.empty()) return reason;

  thread_local WordTable table;
  fill_words(text, table);
  // n-grams are built incrementally, so the rules are walked in increasing n.
  std::size_t n = 1;
  auto advance_to = [&](std::size_t target) {
    while (n < target && table.hashes.size() > n) extend_ngrams(table, ++n);
    return n == target && !table.ngram.empty();
  };
  for (const auto& [size, fraction] : options.top_ngrams) {
    if (!on(fraction) || size < 1 || static_cast<std::size_t>(size) < n) continue;
    if (!advance_to(static_cast<std::size_t>(size))) break;
    if (static_cast<double>(top_ngram_chars(table, n)) / total_chars > fraction) return top_reason(size);
  }
  for (const auto& [size, fraction] : options.dup_ngrams) {
    if (!on(fraction) || size < 1 || static_cast<std::size_t>(size) < n) continue;
    if (!advance_to(static_cast<std::size_t>(size))) break;
    if (static_cast<double>(duplicated_ngram_chars(table, n)) / total_chars > fraction) return dup_reason(size);
  }
  return "";
}

}  // namespace kiln::curate
