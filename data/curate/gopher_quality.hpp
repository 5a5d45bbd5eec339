#pragma once
// Gopher quality rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
// Insights from Training Gopher", appendix A.1.1). Defaults are the published thresholds.
// A threshold of 0 (or a negative number) turns its rule off.
#include <string>
#include <string_view>
#include <vector>

namespace kiln::curate {

struct GopherQualityOptions {
  bool enabled = true;
  double min_doc_words = 50;          // words that are not only punctuation
  double max_doc_words = 100000;
  double min_avg_word_length = 3;     // code points per such word
  double max_avg_word_length = 10;
  double max_symbol_word_ratio = 0.1;     // '#' per word, and '...' / '…' per word
  double max_bullet_lines_ratio = 0.9;    // lines starting with '•' or '-'
  double max_ellipsis_lines_ratio = 0.3;  // lines ending with '...' or '…'
  double min_alpha_words_ratio = 0.8;     // words holding at least one letter
  double min_stop_words = 2;
  std::vector<std::string> stop_words = {"the", "be", "to", "of", "and", "that", "have", "with"};
};

// The reason the text fails (e.g. "gopher_short_doc"), or "" when it passes.
std::string_view gopher_quality_check(std::string_view text, const GopherQualityOptions& options);

}  // namespace kiln::curate
