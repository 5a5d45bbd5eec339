#include "data/tokenizer/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>
#include <cstdint>

#include "data/tokenizer/utf8.hpp"
#include "trainer/core/error.hpp"

namespace kiln::tok {

namespace {

// Unicode White_Space: what Oniguruma's (and Rust regex's) \s matches on UTF-8 text.
constexpr std::string_view kWhiteSpaceClassBody =
    "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";
constexpr std::string_view kHexDigitClassBody = "0-9a-fA-F";
// Oniguruma's Unicode \w: Alphabetic (letters, letter numbers like U+2167, circled letters),
// marks, decimal digits and connector punctuation, plus the Latin-1 numbers its byte table
// counts as word characters (superscripts and fractions). PCRE2's is \p{L}, \p{N} and '_'.
constexpr std::string_view kWordClassBody =
    "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";

// Appends a class body: bare inside an enclosing class, else bracketed (negated if asked).
void append_class(std::string& out, std::string_view body, bool in_class, bool negated) {
  if (!in_class) out += negated ? "[^" : "[";
  out += body;
  if (!in_class) out += ']';
}

// The class an Oniguruma escape letter stands for (lower or upper case).
std::string_view class_body(char escape_letter) {
  switch (escape_letter) {
    case 's': case 'S': return kWhiteSpaceClassBody;
    case 'h': case 'H': return kHexDigitClassBody;
    default: return kWordClassBody;
  }
}

// \b (or \B) over Oniguruma's \w: PCRE2's own \b would use its narrower \w.
void append_word_boundary(std::string& out, bool boundary) {
  const std::string word = fmt::format("[{}]", kWordClassBody);
  out += boundary ? fmt::format("(?:(?<={0})(?!{0})|(?<!{0})(?={0}))", word)
                  : fmt::format("(?:(?<={0})(?={0})|(?<!{0})(?!{0}))", word);
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread scratch for matching. The JIT stack can grow large because a long run of
// whitespace backtracks one code point at a time under \s+(?!\S).
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(16, nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(64 * 1024, 512 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchScratch() {
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
    pcre2_set_heap_limit(context, 4U * 1024U * 1024U);  // KiB: the interpreter fallback's frames
  }
  ~MatchScratch() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

MatchScratch& scratch() {
  thread_local MatchScratch instance;
  return instance;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

namespace {

// At pattern[i] == '(' (outside a class): the length of an option group's "(?imx-imx"
// prefix (ending before ':' or ')'), or 0 when the group is something else.
std::size_t option_group_prefix(std::string_view pattern, std::size_t i) {
  if (pattern.substr(i, 2) != "(?") return 0;
  std::size_t end = i + 2;
  while (end < pattern.size() && (std::isalpha(static_cast<unsigned char>(pattern[end])) || pattern[end] == '-')) ++end;
  if (end == i + 2 || end == pattern.size() || (pattern[end] != ':' && pattern[end] != ')')) return 0;
  return end - i;
}

// Oniguruma's options i and x mean what PCRE2's do; its m (dot matches newline) is PCRE2's s.
void append_option_group(std::string& out, std::string_view pattern, std::string_view group) {
  out += "(?";
  for (const char option : group.substr(2)) {
    if (option == 'i' || option == 'x' || option == '-') {
      out += option;
    } else if (option == 'm') {
      out += 's';
    } else {
      fail("regex '{}': the group option '{}' is not supported (Oniguruma knows i, m and x)", pattern, option);
    }
  }
}

}  // namespace

std::string translate_oniguruma(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  int class_depth = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char escaped = pattern[++i];
      const bool in_class = class_depth > 0;
      if (escaped == 's' || escaped == 'h' || escaped == 'w') {
        append_class(out, class_body(escaped), in_class, false);
      } else if ((escaped == 'S' || escaped == 'H' || escaped == 'W') && !in_class) {
        append_class(out, class_body(escaped), false, true);
      } else if (escaped == 'S' || escaped == 'H' || escaped == 'W') {
        fail("regex '{}': \\{} inside a character class is not supported", pattern, escaped);
      } else if ((escaped == 'b' || escaped == 'B') && !in_class) {
        append_word_boundary(out, escaped == 'b');
      } else if (escaped == 'X') {
        fail("regex '{}': \\X (a grapheme cluster) is not supported: PCRE2's clusters differ from "
             "Oniguruma's (a run of emoji is one cluster to PCRE2)", pattern);
      } else {
        out += '\\';
        out += escaped;
      }
      continue;
    }
    if (c == '(' && class_depth == 0) {
      if (const std::size_t length = option_group_prefix(pattern, i)) {
        append_option_group(out, pattern, pattern.substr(i, length));
        i += length - 1;
        continue;
      }
    }
    if (c == '[') {
      ++class_depth;
      out += c;
      // A ']' (or '^]') right after the opening bracket is a literal, not the end.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
  }
  return out;
}

Regex::Regex(std::string pattern, std::shared_ptr<const Code> code)
    : pattern_(std::move(pattern)), code_(std::move(code)) {}

Regex Regex::from_oniguruma(std::string_view pattern) {
  return compile(translate_oniguruma(pattern), pattern, true);
}

Regex Regex::from_pcre2(std::string_view pattern) { return compile(std::string(pattern), pattern, false); }

Regex Regex::compile(std::string translated, std::string_view pattern, bool line_anchors) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  auto code = std::make_shared<Code>();
  std::unique_ptr<pcre2_compile_context, decltype(&pcre2_compile_context_free)> context(
      pcre2_compile_context_create(nullptr), &pcre2_compile_context_free);
  pcre2_set_newline(context.get(), PCRE2_NEWLINE_LF);
  const std::uint32_t options = PCRE2_UTF | PCRE2_UCP | (line_anchors ? PCRE2_MULTILINE : 0U);
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options, &error,
                             &offset, context.get());
  if (code->code == nullptr) {
    fail("regex '{}' does not compile: {} (at offset {} of the PCRE2 form '{}')", pattern,
         pcre2_message(error), offset, translated);
  }
  code->jit = pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE) == 0;
  return Regex(std::move(translated), std::move(code));
}

Regex Regex::from_literal(std::string_view text) {
  std::string quoted = "\\Q";
  for (std::size_t i = 0; i < text.size(); ++i) {
    // \E would end the quoting early; spell it outside the quote.
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'E') {
      quoted += "\\E\\\\\\Q";
      continue;
    }
    quoted += text[i];
  }
  quoted += "\\E";
  return compile(std::move(quoted), text, false);
}

bool Regex::match(std::string_view subject, std::size_t start, std::size_t& match_begin,
                  std::size_t& match_end) const {
  auto& work = scratch();
  const auto* data = reinterpret_cast<PCRE2_SPTR>(subject.data());
  int rc = PCRE2_ERROR_NOMATCH;
  if (code_->jit) rc = pcre2_jit_match(code_->code, data, subject.size(), start, 0, work.data, work.context);
  if (!code_->jit || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    rc = pcre2_match(code_->code, data, subject.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, work.data,
                     work.context);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail("regex '{}' failed on a text of {} bytes: {}", pattern_, subject.size(), pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(work.data);
  match_begin = ovector[0];
  match_end = ovector[1];
  return true;
}

std::size_t Regex::step_past(std::string_view subject, std::size_t position) {
  if (position >= subject.size()) return position + 1;
  utf8::next(subject, position);
  return position;
}

bool Regex::find(std::string_view subject, std::size_t start, std::size_t& match_begin,
                 std::size_t& match_end) const {
  while (start < subject.size()) {
    if (!match(subject, start, match_begin, match_end)) return false;
    if (match_end > match_begin) return true;
    // An empty match: try again one code point further.
    start = step_past(subject, match_begin);
  }
  return false;
}

}  // namespace kiln::tok
