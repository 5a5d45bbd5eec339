#pragma once
// C4's line and page rules (Raffel et al. 2020, section 2.2, and the reference c4_utils):
// lines without terminal punctuation, with too few words, with a very long word, naming
// javascript or cookie/terms-of-use boilerplate are removed; pages with "lorem ipsum", a
// curly bracket, or fewer than 5 sentences left are dropped. Wikipedia-style citation
// markers ("[12]", "[edit]") are removed. The bad-words page rule drops a page that contains a
// listed word or phrase (whole words, case-insensitive); C4 used the LDNOOBW English list,
// which kiln does not ship: give your list inline (c4.bad_words) or as a file of one entry per
// line (c4.bad_words_file, '#' starts a comment). With no list the rule is off.
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

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
  std::vector<std::string> bad_words;  // words or phrases
  std::string bad_words_file;          // more of them, one per line
};

// The bad-words list, loaded once (the file is read here; a missing file is a kiln::Error).
class BadWords {
 public:
  explicit BadWords(const C4Options& options);
  bool empty() const { return words_.empty() && phrases_.empty(); }
  // True when `text` contains a listed word or phrase as whole words, ignoring ASCII case.
  bool matches(std::string_view text) const;

 private:
  void add(std::string_view entry);
  std::unordered_set<std::string> words_;
  std::vector<std::string> phrases_;  // " w1 w2 ", matched against " " + words + " "
};

struct C4Result {
  std::string_view reason;  // "" = the page is kept
  std::string text;         // the kept lines, joined by '\n'
  std::size_t lines_removed = 0;
};

// bad_words may be null (or empty): then the page rule is skipped.
C4Result c4_apply(std::string_view text, const C4Options& options, const BadWords* bad_words = nullptr);

}  // namespace kiln::curate
