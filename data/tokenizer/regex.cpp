#include "data/tokenizer/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "data/tokenizer/utf8.hpp"
#include "trainer/core/error.hpp"

namespace kiln::tok {

namespace {

// Unicode White_Space: what Oniguruma's (and Rust regex's) \s matches on UTF-8 text.
constexpr std::string_view kWhiteSpaceClassBody =
    "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";
constexpr std::string_view kHexDigitClassBody = "0-9a-fA-F";

// Appends a class body: bare inside an enclosing class, else bracketed (negated if asked).
void append_class(std::string& out, std::string_view body, bool in_class, bool negated) {
  if (!in_class) out += negated ? "[^" : "[";
  out += body;
  if (!in_class) out += ']';
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

std::string translate_oniguruma(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  int class_depth = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char escaped = pattern[++i];
      const bool in_class = class_depth > 0;
      if (escaped == 's' || escaped == 'h') {
        append_class(out, escaped == 's' ? kWhiteSpaceClassBody : kHexDigitClassBody, in_class, false);
      } else if ((escaped == 'S' || escaped == 'H') && !in_class) {
        append_class(out, escaped == 'S' ? kWhiteSpaceClassBody : kHexDigitClassBody, false, true);
      } else if (escaped == 'S' || escaped == 'H') {
        fail("regex '{}': \\{} inside a character class is not supported", pattern, escaped);
      } else {
        out += '\\';
        out += escaped;
      }
      continue;
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
  return compile(translate_oniguruma(pattern), pattern);
}

Regex Regex::from_pcre2(std::string_view pattern) { return compile(std::string(pattern), pattern); }

Regex Regex::compile(std::string translated, std::string_view pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  auto code = std::make_shared<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
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
  return compile(std::move(quoted), text);
}

bool Regex::find(std::string_view subject, std::size_t start, std::size_t& match_begin,
                 std::size_t& match_end) const {
  auto& work = scratch();
  const auto* data = reinterpret_cast<PCRE2_SPTR>(subject.data());
  while (start < subject.size()) {
    int rc = PCRE2_ERROR_NOMATCH;
    if (code_->jit) {
      rc = pcre2_jit_match(code_->code, data, subject.size(), start, 0, work.data, work.context);
    }
    if (!code_->jit || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code_->code, data, subject.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       work.data, work.context);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) fail("regex '{}' failed on a text of {} bytes: {}", pattern_, subject.size(), pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(work.data);
    if (ovector[1] > ovector[0]) {
      match_begin = ovector[0];
      match_end = ovector[1];
      return true;
    }
    // An empty match: try again one code point further, as Oniguruma's iteration does.
    start = ovector[0];
    utf8::next(subject, start);
  }
  return false;
}

}  // namespace kiln::tok
