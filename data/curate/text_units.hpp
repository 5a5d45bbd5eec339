#pragma once
// The units the curation rules count: lines, paragraphs, words, n-grams, characters.
// Rules quote published thresholds that were measured in Python, so "length" here means
// code points (Python's len) and "words" follow the same shape as the reference tokenisation:
// whitespace-separated pieces with leading and trailing punctuation split off as tokens.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::curate {

// Whitespace as Python's str.isspace() defines it (ASCII whitespace, U+001C..U+001F, U+0085,
// U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000): the reference
// rules strip and split with Python's str methods, so these do too.
bool is_python_space(char32_t c);
std::string_view strip(std::string_view text);
std::string_view rstrip(std::string_view text);
std::string_view lstrip(std::string_view text);

// Code points in valid UTF-8 (bytes that are not continuation bytes).
std::size_t code_points(std::string_view text);

// The line and paragraph units. Each is named after the Python expression the reference rule
// uses, because they differ exactly where documents differ: blank lines, a final newline,
// "\r\n", Unicode line separators. The normaliser (stage 1) rewrites all of those into plain
// '\n' with at most one blank line between paragraphs, so with it on the units agree; with it
// off every rule sees the raw text exactly as the reference does.
//
// kiln's own line unit (normaliser, line-level dedup): split on '\n'; a trailing newline does
// not make an extra empty line; blank lines are kept as empty pieces.
void split_lines(std::string_view text, std::vector<std::string_view>& lines);
// re.split("\n+", text): runs of newlines separate lines, so blank lines are no lines at all;
// a leading or trailing newline gives an empty first or last piece (Gopher repetition).
void split_line_runs(std::string_view text, std::vector<std::string_view>& lines);
// re.split("\n{2,}", text.strip()): paragraphs are separated by two or more newlines (Gopher
// repetition). A blank line holding only spaces separates nothing.
void split_paragraphs(std::string_view text, std::vector<std::string_view>& paragraphs);
// str.splitlines(): "\n", "\r", "\r\n", "\v", "\f", U+001C..U+001E, U+0085, U+2028, U+2029
// each end a line; blank lines are empty pieces; a final line break adds no empty line
// (Gopher quality's bullet and ellipsis lines, C4's lines).
void split_python_lines(std::string_view text, std::vector<std::string_view>& lines);
// text.split("\n") keeping only lines that are not whitespace (FineWeb's lines).
void split_non_blank_lines(std::string_view text, std::vector<std::string_view>& lines);
// Python's str.split(): runs of whitespace separate pieces, none empty.
void split_whitespace(std::string_view text, std::vector<std::string_view>& pieces);

// True for the ASCII and common Unicode punctuation and symbol characters the rules treat
// as punctuation (the set of the reference implementation, restricted to what appears in
// practice: ASCII punctuation, dashes, quotes, ellipsis, CJK and full-width punctuation).
bool is_punctuation(char32_t c);
// A token made only of punctuation ("...", "--", "?").
bool is_punctuation_token(std::string_view token);
// True when the token holds at least one letter (any script).
bool has_letter(std::string_view token);

// Word tokens, shaped like the reference's (spaCy's English tokenizer) in the cases web text
// has most: whitespace pieces with leading/trailing punctuation split off one token per
// punctuation character ("end." gives "end" "."; "--" gives "-" "-"), hyphens between letters
// split out ("well-known" gives "well" "-" "known") and English clitics split off ("don't"
// gives "do" "n't", "it's" gives "it" "'s"). spaCy's abbreviation list ("U.S." is one token
// there, "U.S" "." here), URL, emoticon and all-punctuation pieces ("|---|", "):" are one
// token there, one per character here) are not reproduced: recipes/CURATE.md counts what
// that changes.
void word_tokens(std::string_view text, std::vector<std::string_view>& tokens);

// Lowercased words with punctuation removed and numbers folded to "0", each with the byte
// span it came from in `text`: the form shingles and n-gram matches compare, so that
// "Hello, World" and "hello world" agree. Diacritics are removed (café -> cafe).
struct SimpleWord {
  std::uint64_t hash = 0;
  std::uint32_t begin = 0;  // byte span in the original text
  std::uint32_t end = 0;
};
// fold_numbers = false keeps digits as written ("47" stays "47").
void simple_words(std::string_view text, std::vector<SimpleWord>& words, std::string& scratch, bool fold_numbers = true);

// Decodes one code point at text[offset]; advances offset. Invalid bytes decode as U+FFFD.
char32_t next_code_point(std::string_view text, std::size_t& offset);

// Hash of a token sequence: order-sensitive, fast to extend by one token.
constexpr std::uint64_t extend_hash(std::uint64_t hash, std::uint64_t token) {
  hash ^= token + 0x9E3779B97F4A7C15ULL + (hash << 6) + (hash >> 2);
  hash *= 0xBF58476D1CE4E5B9ULL;
  return hash ^ (hash >> 31);
}

}  // namespace kiln::curate
