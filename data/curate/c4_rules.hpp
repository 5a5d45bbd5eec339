#pragma once
// C4's line and page rules (Raffel et al. 2020, section 2.2, and the reference c4_utils):
// lines without terminal punctuation, with too few words, with a very long word, naming
// javascript or cookie/terms-of-use boilerplate are removed; pages with "lorem ipsum", a
// curly bracket, or fewer than 5 sentences left are dropped. Wikipedia-style citation
// markers ("[12]", "[edit]") are removed. The bad-words rule needs an external list and is
// not part of this stage.
#include <string>
#include <string_view>

namespace kiln::curate {

struct C4Options {
  bool enabled = true;
  bool remove_citations = true;
  bool filter_no_terminal_punct = true;
  int min_words_per_line = 3;     // 0 = off
  int max_word_length = 1000;     // 0 = off
  int min_num_sentences = 5;      // 0 = off
  bool filter_lorem_ipsum = true;
  bool filter_javascript = true;
  bool filter_curly_bracket = true;
  bool filter_policy = true;
};

struct C4Result {
  std::string_view reason;  // "" = the page is kept
  std::string text;         // the kept lines, joined by '\n'
  std::size_t lines_removed = 0;
};

C4Result c4_apply(std::string_view text, const C4Options& options);

}  // namespace kiln::curate
