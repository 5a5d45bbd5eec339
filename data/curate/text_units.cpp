#include "data/curate/text_units.hpp"

#include <utf8proc.h>
#include <xxhash.h>

#include <array>

namespace kiln::curate {

namespace {

constexpr bool is_ascii_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

constexpr std::array<bool, 128> ascii_punctuation_table() {
  std::array<bool, 128> table{};
  for (char c : std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr auto kAsciiPunctuation = ascii_punctuation_table();

bool unicode_punctuation(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK: case UTF8PROC_CATEGORY_SO: case UTF8PROC_CATEGORY_CC:
      return true;
    default:
      return false;
  }
}

bool unicode_space(char32_t c) {
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_digit(char32_t c) {
  if (c < 128) return c >= '0' && c <= '9';
  return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ND;
}

// Lowercased, accent-free form of one code point appended to `out`.
void append_simplified(char32_t c, std::string& out) {
  if (c < 128) {
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  utf8proc_int32_t decomposed[8];
  int boundclass = 0;
  const auto count = utf8proc_decompose_char(
      static_cast<utf8proc_int32_t>(c), decomposed, 8,
      static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_STRIPMARK | UTF8PROC_CASEFOLD | UTF8PROC_COMPAT),
      &boundclass);
  for (utf8proc_ssize_t i = 0; i < count && i < 8; ++i) {
    utf8proc_uint8_t bytes[4];
    const auto length = utf8proc_encode_char(decomposed[i], bytes);
    out.append(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(length));
  }
}

}  // namespace

char32_t next_code_point(std::string_view text, std::size_t& offset) {
  const auto first = static_cast<unsigned char>(text[offset]);
  if (first < 0x80) {
    ++offset;
    return first;
  }
  utf8proc_int32_t code_point = 0;
  const auto length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + offset),
                                       static_cast<utf8proc_ssize_t>(text.size() - offset), &code_point);
  if (length <= 0) {
    ++offset;
    return 0xFFFD;
  }
  offset += static_cast<std::size_t>(length);
  return static_cast<char32_t>(code_point);
}

bool is_python_space(char32_t c) {
  if (c < 128) return is_ascii_space(static_cast<unsigned char>(c)) || (c >= 0x1C && c <= 0x1F);
  return unicode_space(c);
}

namespace {

// Start of the code point that ends at `end` (a continuation byte never starts one).
std::size_t previous_code_point(std::string_view text, std::size_t end) {
  std::size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return start;
}

// Bytes of the Python line break at text[offset] ("\r\n" is one), 0 when there is none.
std::size_t python_line_break_at(std::string_view text, std::size_t offset) {
  const auto byte = static_cast<unsigned char>(text[offset]);
  if (byte == '\r') return offset + 1 < text.size() && text[offset + 1] == '\n' ? 2 : 1;
  if (byte == '\n' || byte == '\v' || byte == '\f' || (byte >= 0x1C && byte <= 0x1E)) return 1;
  if (byte < 0x80) return 0;
  std::size_t next = offset;
  const char32_t c = next_code_point(text, next);
  return c == 0x85 || c == 0x2028 || c == 0x2029 ? next - offset : 0;
}

}  // namespace

std::string_view lstrip(std::string_view text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t next = begin;
    if (!is_python_space(next_code_point(text, next))) break;
    begin = next;
  }
  return text.substr(begin);
}

std::string_view rstrip(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    const std::size_t start = previous_code_point(text, end);
    std::size_t probe = start;
    if (!is_python_space(next_code_point(text, probe)) || probe != end) break;
    end = start;
  }
  return text.substr(0, end);
}

std::string_view strip(std::string_view text) { return rstrip(lstrip(text)); }

std::size_t code_points(std::string_view text) {
  std::size_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

void split_lines(std::string_view text, std::vector<std::string_view>& lines) {
  lines.clear();
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t newline = text.find('\n', begin);
    if (newline == std::string_view::npos) {
      lines.push_back(text.substr(begin));
      return;
    }
    lines.push_back(text.substr(begin, newline - begin));
    begin = newline + 1;
  }
}

namespace {

// Pieces of `text` between runs of at least `min_run` consecutive '\n' (re.split semantics:
// a run at either end gives an empty piece there; shorter runs stay inside pieces).
void split_on_newline_runs(std::string_view text, std::size_t min_run, std::vector<std::string_view>& pieces) {
  pieces.clear();
  std::size_t begin = 0;
  std::size_t search = 0;
  while (true) {
    const std::size_t run_begin = text.find('\n', search);
    if (run_begin == std::string_view::npos) break;
    std::size_t run_end = run_begin;
    while (run_end < text.size() && text[run_end] == '\n') ++run_end;
    if (run_end - run_begin >= min_run) {
      pieces.push_back(text.substr(begin, run_begin - begin));
      begin = run_end;
    }
    search = run_end;
  }
  pieces.push_back(text.substr(begin));
}

}  // namespace

void split_line_runs(std::string_view text, std::vector<std::string_view>& lines) {
  split_on_newline_runs(text, 1, lines);
}

void split_paragraphs(std::string_view text, std::vector<std::string_view>& paragraphs) {
  split_on_newline_runs(strip(text), 2, paragraphs);
}

void split_python_lines(std::string_view text, std::vector<std::string_view>& lines) {
  lines.clear();
  std::size_t begin = 0;
  std::size_t offset = 0;
  while (offset < text.size()) {
    if (const std::size_t length = python_line_break_at(text, offset)) {
      lines.push_back(text.substr(begin, offset - begin));
      offset += length;
      begin = offset;
    } else {
      ++offset;
    }
  }
  if (begin < text.size()) lines.push_back(text.substr(begin));
}

void split_non_blank_lines(std::string_view text, std::vector<std::string_view>& lines) {
  split_on_newline_runs(text, 1, lines);
  std::erase_if(lines, [](std::string_view line) { return strip(line).empty(); });
}

void split_whitespace(std::string_view text, std::vector<std::string_view>& pieces) {
  pieces.clear();
  std::size_t offset = 0;
  while (offset < text.size()) {
    while (offset < text.size()) {
      std::size_t next = offset;
      if (!is_python_space(next_code_point(text, next))) break;
      offset = next;
    }
    const std::size_t begin = offset;
    while (offset < text.size()) {
      std::size_t next = offset;
      if (is_python_space(next_code_point(text, next))) break;
      offset = next;
    }
    if (offset > begin) pieces.push_back(text.substr(begin, offset - begin));
  }
}

bool is_punctuation(char32_t c) {
  if (c < 128) return kAsciiPunctuation[c] || c < 32 || c == 127;
  return unicode_punctuation(c);
}

bool is_punctuation_token(std::string_view token) {
  std::size_t offset = 0;
  while (offset < token.size()) {
    if (!is_punctuation(next_code_point(token, offset))) return false;
  }
  return true;
}

bool has_letter(std::string_view token) {
  std::size_t offset = 0;
  while (offset < token.size()) {
    const char32_t c = next_code_point(token, offset);
    if (c < 128) {
      if ((c | 32) >= 'a' && (c | 32) <= 'z') return true;
      continue;
    }
    const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    if (category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO) return true;
  }
  return false;
}

namespace {

bool is_letter(char32_t c) {
  if (c < 128) return (c | 32) >= 'a' && (c | 32) <= 'z';
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO;
}

// Byte length of an English clitic ending `word` after a letter ("n't", "'s", "'re", "'ve",
// "'ll", "'d", "'m", with ' or U+2019), 0 when there is none: "don't" is "do" + "n't".
std::size_t clitic_length(std::string_view word) {
  auto ends_with_folded = [&](std::string_view suffix) {
    if (word.size() <= suffix.size()) return false;
    for (std::size_t i = 0; i < suffix.size(); ++i) {
      const char c = word[word.size() - suffix.size() + i];
      if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) != suffix[i]) return false;
    }
    return true;
  };
  for (std::string_view apostrophe : {"'", "\u2019"}) {
    for (std::string_view ending : {"s", "re", "ve", "ll", "d", "m", "t"}) {
      const std::string suffix = (ending == "t" ? "n" : "") + std::string(apostrophe) + std::string(ending);
      if (!ends_with_folded(suffix)) continue;
      std::size_t offset = previous_code_point(word, word.size() - suffix.size());
      if (is_letter(next_code_point(word, offset))) return suffix.size();
    }
  }
  return 0;
}

// The word between leading and trailing punctuation, split at hyphens between letters
// ("well-known" is "well" "-" "known") and before an English clitic.
void append_word_tokens(std::string_view word, std::vector<std::string_view>& tokens) {
  const std::size_t clitic = clitic_length(word);
  const std::string_view stem = word.substr(0, word.size() - clitic);
  std::size_t begin = 0;
  for (std::size_t at = stem.find('-'); at != std::string_view::npos; at = stem.find('-', at + 1)) {
    if (at == 0 || at + 1 >= stem.size()) continue;
    std::size_t before = previous_code_point(stem, at);
    std::size_t after = at + 1;
    if (!is_letter(next_code_point(stem, before)) || !is_letter(next_code_point(stem, after))) continue;
    tokens.push_back(stem.substr(begin, at - begin));
    tokens.push_back(stem.substr(at, 1));
    begin = at + 1;
  }
  tokens.push_back(stem.substr(begin));
  if (clitic > 0) tokens.push_back(word.substr(stem.size()));
}

}  // namespace

void word_tokens(std::string_view text, std::vector<std::string_view>& tokens) {
  tokens.clear();
  thread_local std::vector<std::string_view> pieces;
  thread_local std::vector<std::string_view> trailing;
  split_whitespace(text, pieces);
  for (std::string_view piece : pieces) {
    // Leading punctuation: one token per character.
    std::size_t begin = 0;
    while (begin < piece.size()) {
      std::size_t next = begin;
      if (!is_punctuation(next_code_point(piece, next))) break;
      tokens.push_back(piece.substr(begin, next - begin));
      begin = next;
    }
    if (begin == piece.size()) continue;
    // Trailing punctuation, found from the end (code point starts only).
    std::size_t end = piece.size();
    trailing.clear();
    while (end > begin) {
      const std::size_t start = std::max(begin, previous_code_point(piece, end));
      std::size_t probe = start;
      if (!is_punctuation(next_code_point(piece, probe))) break;
      trailing.push_back(piece.substr(start, end - start));
      end = start;
    }
    append_word_tokens(piece.substr(begin, end - begin), tokens);
    tokens.insert(tokens.end(), trailing.rbegin(), trailing.rend());
  }
}

void simple_words(std::string_view text, std::vector<SimpleWord>& words, std::string& scratch, bool fold_numbers) {
  words.clear();
  std::size_t offset = 0;
  auto finish_word = [&](std::size_t begin, std::size_t end) {
    if (scratch.empty()) return;
    words.push_back({XXH3_64bits(scratch.data(), scratch.size()), static_cast<std::uint32_t>(begin),
                     static_cast<std::uint32_t>(end)});
    scratch.clear();
  };
  scratch.clear();
  std::size_t word_begin = 0;
  while (offset < text.size()) {
    const std::size_t at = offset;
    const char32_t c = next_code_point(text, offset);
    const bool separator = (c < 128 && is_ascii_space(static_cast<unsigned char>(c))) || unicode_space(c) ||
                           is_punctuation(c);
    if (separator) {
      finish_word(word_begin, at);
      word_begin = offset;
      continue;
    }
    if (scratch.empty()) word_begin = at;
    if (fold_numbers && is_digit(c)) {
      // A number ("3", "3.14", "12,000") folds to "0", as one unit.
      while (offset < text.size()) {
        std::size_t probe = offset;
        const char32_t d = next_code_point(text, probe);
        if (is_digit(d)) {
          offset = probe;
          continue;
        }
        if ((d == '.' || d == ',') && probe < text.size()) {
          std::size_t after = probe;
          if (is_digit(next_code_point(text, after))) {
            offset = probe;
            continue;
          }
        }
        break;
      }
      scratch.push_back('0');
      continue;
    }
    append_simplified(c, scratch);
  }
  finish_word(word_begin, text.size());
}

}  // namespace kiln::curate
