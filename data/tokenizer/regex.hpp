#pragma once
// The pre-tokenizers' regular expressions, run with PCRE2 (UTF + UCP, JIT-compiled).
//
// Patterns in tokenizer.json are written for Oniguruma, the engine `tokenizers` uses. Both are
// Perl-style backtracking engines with the same leftmost-first alternation, lookahead and
// (?i:...) case folding, and the same \p{..} general categories, so a pattern means the same
// in both once the few things that differ are rewritten (see translate_oniguruma):
// Oniguruma's \s is the Unicode White_Space property while PCRE2's also matches U+180E; its \h
// is a hex digit, not horizontal space; its \w (and so \b, \B) is Alphabetic, marks, decimal
// digits and connector punctuation, where PCRE2's is letters, numbers and '_'; its (?m) option
// is PCRE2's (?s) (dot matches newline). \X is refused: the engines cut grapheme clusters
// differently. Oniguruma's ^ and $ always anchor at line starts and ends (\n only), so its
// patterns compile with PCRE2_MULTILINE and LF newlines.
//
// One gap remains: PCRE2 10.42 knows Unicode 14, the Oniguruma inside `tokenizers` 0.23 knows
// Unicode 16, so code points assigned since (about 9k, e.g. U+1C89) fall in different classes.
//
// A compiled Regex is immutable and may be shared between threads: the per-match scratch
// (match data, JIT stack) is thread-local.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::tok {

// Oniguruma pattern -> PCRE2 pattern with the same meaning. Throws kiln::Error for what it
// cannot carry over (\S, \H, \W inside a character class, \X, group options other than i, m, x).
std::string translate_oniguruma(std::string_view pattern);

class Regex {
 public:
  // Throws kiln::Error with PCRE2's message and the offset when the pattern does not compile.
  static Regex from_oniguruma(std::string_view pattern);
  static Regex from_literal(std::string_view text);
  // A pattern already in PCRE2 syntax (kiln's own patterns).
  static Regex from_pcre2(std::string_view pattern);

  // First non-empty match at or after `start` in `subject` (valid UTF-8, `start` on a code
  // point boundary). Returns false when there is none.
  bool find(std::string_view subject, std::size_t start, std::size_t& match_begin,
            std::size_t& match_end) const;

  // Calls on_match(begin, end) for every non-empty, non-overlapping match, left to right.
  template <class OnMatch>
  void for_each_match(std::string_view subject, OnMatch&& on_match) const {
    std::size_t start = 0;
    std::size_t begin = 0;
    std::size_t end = 0;
    while (start < subject.size() && find(subject, start, begin, end)) {
      on_match(begin, end);
      start = end;
    }
  }

  // Calls on_match(begin, end) for the matches Oniguruma's find_iter reports (what
  // `tokenizers` splits on), empty ones included: each search starts where the last match
  // ended, and an empty match right at the end of the previous match is skipped by searching
  // again one code point further. So `a*` on "baa" gives (0,0) (1,3), and `\b` on "hi" gives
  // (0,0) (2,2).
  template <class OnMatch>
  void for_each_match_with_empty(std::string_view subject, OnMatch&& on_match) const {
    std::size_t search_from = 0;
    std::optional<std::size_t> previous_end;
    std::size_t begin = 0;
    std::size_t end = 0;
    while (search_from <= subject.size() && match(subject, search_from, begin, end)) {
      if (begin == end && previous_end == end) {
        search_from = step_past(subject, end);
        continue;
      }
      search_from = end;
      previous_end = end;
      on_match(begin, end);
    }
  }

  // Leftmost match at or after `start` (<= subject.size()), empty or not.
  bool match(std::string_view subject, std::size_t start, std::size_t& match_begin,
             std::size_t& match_end) const;

  // The pattern as PCRE2 compiled it.
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  // `pattern` is the PCRE2 form; `shown` is what error messages quote.
  static Regex compile(std::string pattern, std::string_view shown, bool line_anchors);
  // The position one code point after `position`, or one past the end at the end.
  static std::size_t step_past(std::string_view subject, std::size_t position);
  Regex(std::string pattern, std::shared_ptr<const Code> code);
  std::string pattern_;
  std::shared_ptr<const Code> code_;
};

}  // namespace kiln::tok
