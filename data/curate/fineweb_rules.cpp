#include "data/curate/fineweb_rules.hpp"

#include <algorithm>
#include <vector>

#include "data/curate/gopher_repetition.hpp"
#include "data/curate/text_units.hpp"
#include "data/tokenizer/regex.hpp"

namespace kiln::curate {

namespace {

// A line "ends in punctuation" when its last character is a sentence terminator: the Unicode
// Sentence_Terminal property, which is what the reference's list of terminal punctuation
// spells out (the two differ in 17 rarely used code points, none of them in Latin, Cyrillic,
// Greek, Arabic or CJK text). Quotes and brackets after the full stop do not count, as there.
bool ends_with_sentence_terminal(std::string_view line) {
  if (line.empty()) return false;
  const auto last = static_cast<unsigned char>(line.back());
  if (last < 0x80) return last == '.' || last == '!' || last == '?';
  std::size_t start = line.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(line[start]) & 0xC0) == 0x80) --start;
  static const tok::Regex kSentenceTerminal = tok::Regex::from_pcre2(R"(\p{STerm})");
  std::size_t begin = 0, end = 0;
  return kSentenceTerminal.find(line.substr(start), 0, begin, end);
}

double fraction(std::size_t part, std::size_t whole) { return static_cast<double>(part) / static_cast<double>(whole); }

}  // namespace

// Lines are the non-blank pieces of text.split("\n"): blank lines and lines of only spaces
// are no lines for any of the ratios, so paragraph breaks do not make a page "short-lined".
// Comparisons are the reference's: the ratio must cross the threshold strictly.
std::string_view fineweb_check(std::string_view text, const FineWebOptions& options) {
  thread_local std::vector<std::string_view> lines;
  split_non_blank_lines(text, lines);
  if (lines.empty()) return "fineweb_empty";

  if (options.min_line_punct_ratio > 0) {
    const double ratio = fraction(static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), ends_with_sentence_terminal)), lines.size());
    if (ratio < options.min_line_punct_ratio && !(ratio == 0 && options.line_punct_exclude_zero)) {
      return "fineweb_line_punct_ratio";
    }
  }
  if (options.max_short_line_ratio > 0) {
    const auto short_lines = std::count_if(lines.begin(), lines.end(), [&](std::string_view line) {
      return code_points(line) <= static_cast<std::size_t>(options.short_line_length);
    });
    if (fraction(static_cast<std::size_t>(short_lines), lines.size()) > options.max_short_line_ratio) {
      return "fineweb_short_line_ratio";
    }
  }
  if (options.max_char_dup_ratio > 0) {
    const auto chars = code_points(text) - static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    if (chars > 0 && fraction(find_duplicates(lines).chars, chars) > options.max_char_dup_ratio) {
      return "fineweb_char_dup_ratio";
    }
  }
  if (options.max_newline_ratio > 0) {
    thread_local std::vector<std::string_view> words;
    word_tokens(text, words);
    if (words.empty()) return "fineweb_no_words";
    const auto newlines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    if (fraction(newlines, words.size()) > options.max_newline_ratio) return "fineweb_list_ratio";
  }
  return "";
}

}  // namespace kiln::curate
