#pragma once
// The pre-tokenizers' regular expressions, run with PCRE2 (UTF + UCP, JIT-compiled).
//
// Patterns in tokenizer.json are written for Oniguruma, the engine `tokenizers` uses. Both are
// Perl-style backtracking engines with the same leftmost-first alternation, lookahead and
// (?i:...) case folding, and the same \p{..} general categories (Unicode 14 in both), so a
// pattern means the same in both once the few escapes that differ are rewritten
// (see translate_oniguruma): Oniguruma's \s is the Unicode White_Space property while
// PCRE2's also matches U+180E, and Oniguruma's \h is a hex digit, not horizontal space.
//
// A compiled Regex is immutable and may be shared between threads: the per-match scratch
// (match data, JIT stack) is thread-local.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace kiln::tok {

// Oniguruma pattern -> PCRE2 pattern with the same meaning. Throws kiln::Error for escapes it
// cannot carry over (\S inside a character class).
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

  // The pattern as PCRE2 compiled it.
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  // `pattern` is the PCRE2 form; `shown` is what error messages quote.
  static Regex compile(std::string pattern, std::string_view shown);
  Regex(std::string pattern, std::shared_ptr<const Code> code);
  std::string pattern_;
  std::shared_ptr<const Code> code_;
};

}  // namespace kiln::tok
