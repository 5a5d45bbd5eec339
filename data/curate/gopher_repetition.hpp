#pragma once
// Gopher repetition rules (Rae et al. 2021, table A1): documents whose lines, paragraphs or
// word n-grams repeat too much are dropped. Fractions are of the document's characters
// (code points); defaults are the published thresholds; 0 turns a rule off.
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::curate {

struct GopherRepetitionOptions {
  bool enabled = true;
  double max_dup_line_fraction = 0.30;
  double max_dup_paragraph_fraction = 0.30;
  double max_dup_line_char_fraction = 0.20;
  double max_dup_paragraph_char_fraction = 0.20;
  // (n, max fraction of characters in the most frequent n-gram)
  std::vector<std::pair<int, double>> top_ngrams = {{2, 0.20}, {3, 0.18}, {4, 0.16}};
  // (n, max fraction of characters in n-grams that occur more than once)
  std::vector<std::pair<int, double>> dup_ngrams = {{5, 0.15}, {6, 0.14}, {7, 0.13}, {8, 0.12}, {9, 0.11}, {10, 0.10}};
};

std::string_view gopher_repetition_check(std::string_view text, const GopherRepetitionOptions& options);

// Pieces that repeat an earlier piece of the list: how many, and their code points.
struct Duplicates {
  std::size_t count = 0;
  std::size_t chars = 0;
};
Duplicates find_duplicates(const std::vector<std::string_view>& pieces);

}  // namespace kiln::curate
