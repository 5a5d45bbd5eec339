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

std::string_view strip(std::string_view text);   // Unicode-agnostic: ASCII whitespace
std::string_view rstrip(std::string_view text);
std::string_view lstrip(std::string_view text);

// Code points in valid UTF-8 (bytes that are not continuation bytes).
std::size_t code_points(std::string_view text);

// Lines split on '\n' (text is normalised first, so '\r' is gone); like Python's splitlines,
// a trailing newline does not make an extra empty line.
void split_lines(std::string_view text, std::vector<std::string_view>& lines);
// Paragraphs: pieces of strip(text) separated by two or more newlines.
void split_paragraphs(std::string_view text, std::vector<std::string_view>& paragraphs);
// Python's str.split(): runs of ASCII whitespace separate pieces, none empty.
void split_whitespace(std::string_view text, std::vector<std::string_view>& pieces);

// True for the ASCII and common Unicode punctuation and symbol characters the rules treat
// as punctuation (the set of the reference implementation, restricted to what appears in
// practice: ASCII punctuation, dashes, quotes, ellipsis, CJK and full-width punctuation).
bool is_punctuation(char32_t c);
// A token made only of punctuation ("...", "--", "?").
bool is_punctuation_token(std::string_view token);
// True when the token holds at least one letter (any script).
bool has_letter(std::string_view token);

// Word tokens: whitespace pieces with leading/trailing punctuation split off one token per
// punctuation character, so "end." gives "end" and "." and "--" gives "-" "-".
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
