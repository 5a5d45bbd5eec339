#pragma once
// UTF-8 helpers for the tokenizer: validation, repair of invalid input and code point
// iteration. Repair follows Python's `bytes.decode("utf-8", errors="replace")` exactly (one
// U+FFFD per maximal ill-formed subpart, the Unicode "best practice"), so that kiln and the
// `tokenizers` library, which only ever sees Python `str`, tokenize the same text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::tok::utf8 {

inline constexpr char32_t kReplacementChar = U'\uFFFD';

// Length of the well-formed sequence starting at text[pos], or 0 when it is ill-formed.
std::size_t valid_sequence_length(std::string_view text, std::size_t pos);

bool is_valid(std::string_view text);

// Returns `text` itself when it is valid UTF-8; otherwise writes the repaired text into
// `storage` and returns a view of it.
std::string_view repaired(std::string_view text, std::string& storage);

void append(std::string& out, char32_t code_point);

// Decodes the (valid) code point at text[pos] and advances pos past it.
char32_t next(std::string_view text, std::size_t& pos);
// Decodes the (valid) code point that ends at text[end] (exclusive); returns its start in start.
char32_t previous(std::string_view text, std::size_t end, std::size_t& start);

}  // namespace kiln::tok::utf8
